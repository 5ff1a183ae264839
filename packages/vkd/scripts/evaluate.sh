#!/usr/bin/env bash
# The original's 2-GPU DeiT-Ti evaluation (scripts/evaluate.sh), run from packages/vkd; torchrun or a plain
# `python main_distributed.py --eval-student ...` work as well.
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-2,3} \
OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} \
python -m torch.distributed.launch --master_port 1235 --nproc_per_node=2 main_distributed.py \
    --teacher regnety_160 \
    --student-model deit_ti_distilled \
    --eval-student \
    --student-ckpt "${STUDENT_CKPT:-/path/to/deit_tiny/latest.pth.tar}" \
    --batch-size 64 \
    --data-path "${DATA_PATH:-/path/to/imagenet2012}" \
    --world_size 2 \
    "$@"
