#!/usr/bin/env bash
# The original's 2-GPU DeiT-Ti training (scripts/train.sh), run from packages/vkd.
# Teacher weights: the DeiT RegNetY-160 (`python -m kdrepro_shared.checkpoints fetch deit/regnety_160`, or pass the
# registry name itself: --teacher-path deit/regnety_160). Any of these launch forms works:
#   torchrun --master_port 1235 --nproc_per_node=2 main_distributed.py ...
#   python -m torch.distributed.launch --master_port 1235 --nproc_per_node=2 main_distributed.py ...
#   python main_distributed.py ...            (one process, no launcher)
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-1,2} \
OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} \
python -m torch.distributed.launch --master_port 1235 --nproc_per_node=2 main_distributed.py \
    --teacher regnety_160 \
    --student-model deit_ti_distilled \
    --batch-size 512 \
    --teacher-path "${TEACHER_PATH:-ckpts/regnety_160-a5fe301d.pth}" \
    --data-path "${DATA_PATH:-/path/to/imagenet2012}" \
    --output_dir output_deit_ti/ \
    "$@"
