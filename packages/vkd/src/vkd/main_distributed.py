"""Classification entry point of the original (`main_distributed.py`): its full CLI, process group, seeds, dispatch.

Works under `torchrun`, under `python -m torch.distributed.launch` (which passes `--local-rank`) and as a plain
single process. Flags marked [DEAD] in the help parse as in the original and change nothing.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence

import numpy as np
import torch

from kdrepro_shared.errors import exit_on_user_error
from vkd import distributed_utils

MAIN_SEED = 14159265
DEAD = "[DEAD: parsed, unused, as in the original]"


def get_args_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 -- one statement per flag
    """The original's parser, flag for flag (names, types, defaults), plus the opt-in fixes at the end."""
    parser = argparse.ArgumentParser("VkD DeiT distillation (train / --eval-student)")
    add = parser.add_argument
    add("--batch-size", default=256, type=int, help="per-process train batch; val batch is int(1.5 x this)")
    add("--epochs", default=300, type=int)
    add("--bce-loss", action="store_true", help="BCEWithLogits on (targets > 0) instead of soft-target CE")
    add("--unscale-lr", action="store_true", help=f"{DEAD} (only gates the never-used linear lr scaling)")
    add("--eval-student", action="store_true", help="evaluate --student-ckpt instead of training")
    add("--student-ckpt", default="none", type=str, help="student checkpoint (loaded before training and by eval)")
    add(
        "--student-model",
        default="deit_base_patch16_224",
        type=str,
        metavar="MODEL",
        help="student key: deit_ti_distilled, deit_s_distilled, ... (the default is not a key, as in the original)",
    )
    add("--input-size", default=224, type=int, help="images input size (the DeiT students need 223-238)")
    add("--drop", type=float, default=0.0, metavar="PCT", help=DEAD)
    add("--drop-path", type=float, default=0.1, metavar="PCT", help=f"{DEAD}: no stochastic depth is used")
    add("--student-ema", action="store_true", default=False, help="keep an EMA of the student (momentum .996 -> 1)")
    add("--no-student-ema", action="store_false", dest="student_ema")
    parser.set_defaults(model_ema=True)
    add("--student-ema-decay", type=float, default=0.99996, help=DEAD)
    add("--student-ema-force-cpu", action="store_true", default=False, help=DEAD)
    add("--opt", default="adamw", type=str, metavar="OPTIMIZER", help=f"{DEAD}: AdamW is hard-coded")
    add("--opt-eps", default=1e-8, type=float, metavar="EPSILON", help=DEAD)
    add("--opt-betas", default=None, type=float, nargs="+", metavar="BETA", help=DEAD)
    add("--clip-grad", type=float, default=None, metavar="NORM", help="clip gradient norm (default: no clipping)")
    add("--momentum", type=float, default=0.9, metavar="M", help=DEAD)
    add("--weight-decay", type=float, default=0.05, help=f"{DEAD}: 0.05 is hard-coded")
    add("--alpha", type=float, default=1.0, help="weight of the representation (projector) loss")
    add("--gamma", type=float, default=1.0, help="weight of the KL logit loss")
    add("--sched", default="cosine", type=str, metavar="SCHEDULER", help=f"{DEAD}: per-iteration cosine hard-coded")
    add("--lr", type=float, default=5e-4, metavar="LR", help=f"{DEAD}: the optimizer always uses 5e-4")
    add("--lr-noise", type=float, nargs="+", default=None, metavar="pct, pct", help=DEAD)
    add("--lr-noise-pct", type=float, default=0.67, metavar="PERCENT", help=DEAD)
    add("--lr-noise-std", type=float, default=1.0, metavar="STDDEV", help=DEAD)
    add("--warmup-lr", type=float, default=1e-6, metavar="LR", help=DEAD)
    add("--min-lr", type=float, default=1e-5, metavar="LR", help=f"{DEAD}: 5e-6 is hard-coded")
    add("--decay-epochs", type=float, default=30, metavar="N", help=DEAD)
    add("--warmup-epochs", type=int, default=5, metavar="N", help=f"{DEAD}: no warmup")
    add("--cooldown-epochs", type=int, default=10, metavar="N", help=DEAD)
    add("--patience-epochs", type=int, default=10, metavar="N", help=DEAD)
    add("--decay-rate", "--dr", type=float, default=0.1, metavar="RATE", help=DEAD)
    add("--color-jitter", type=float, default=0.3, metavar="PCT", help="ThreeAugment colour jitter strength")
    add("--aa", type=str, default="rand-m9-mstd0.5-inc1", metavar="NAME", help=f"{DEAD}: ThreeAugment replaces it")
    add("--smoothing", type=float, default=0.1, help="label smoothing (inside Mixup when it is active)")
    add("--train-interpolation", type=str, default="bicubic", help=DEAD)
    add("--repeated-aug", action="store_true", help=DEAD)
    add("--no-repeated-aug", action="store_false", dest="repeated_aug", help=DEAD)
    parser.set_defaults(repeated_aug=True)
    add("--train-mode", action="store_true", help=DEAD)
    add("--no-train-mode", action="store_false", dest="train_mode", help=DEAD)
    parser.set_defaults(train_mode=True)
    add("--src", action="store_true", help="simple random crop (Resize + padded RandomCrop) instead of RRC")
    add(
        "--disable-gray-solar-and-blur",
        action="store_true",
        dest="disable_gray_solar_and_blur",
        help="drop ThreeAugment's gray/solarize/blur choice",
    )
    parser.set_defaults(disable_gray_solar_and_blur=False)
    add("--reprob", type=float, default=0.25, metavar="PCT", help=DEAD)
    add("--remode", type=str, default="pixel", help=DEAD)
    add("--recount", type=int, default=1, help=DEAD)
    add("--resplit", action="store_true", default=False, help=DEAD)
    add("--mixup", type=float, default=0.8, help="mixup alpha, mixup enabled if > 0")
    add("--cutmix", type=float, default=1.0, help="cutmix alpha, cutmix enabled if > 0")
    add("--cutmix-minmax", type=float, nargs="+", default=None, help="cutmix min/max ratio (overrides alpha)")
    add("--mixup-prob", type=float, default=1.0, help="probability of mixup or cutmix per batch")
    add("--mixup-switch-prob", type=float, default=0.5, help="probability of cutmix when both are enabled")
    add("--mixup-mode", type=str, default="batch", help='"batch", "pair" or "elem"')
    add("--teacher", default="regnety_160", type=str, metavar="MODEL", help="timm name of the CNN teacher")
    add("--teacher-path", type=str, help="teacher weights ({'model': state_dict} or a state_dict; path/URL/registry)")
    add("--data-path", default="/home/roymiles/imagenet2012_downloaded", type=str, help="root with train/ and val/")
    add("--data-set", default="IMNET", choices=["CIFAR", "IMNET"], type=str, help="dataset")
    add("--subset", default="FULL", choices=["FULL", "1PERCENT", "10PERCENT", "MINIIMAGENET"], type=str, help=DEAD)
    add("--output_dir", default="", help="where to save checkpoints (logs go to the CWD when empty)")
    add("--device", default="cuda", help=f"{DEAD}: cuda:<local rank> when CUDA is available, else cpu")
    add("--seed", default=0, type=int, help=f"{DEAD}: seeds are hard-coded (14159265, then 1 + rank)")
    add("--resume", default="", help="resume from checkpoint")
    add("--start_epoch", default=0, type=int, metavar="N", help="start epoch")
    add("--eval", action="store_true", help="evaluate the (--student-ckpt) student and exit")
    add("--eval-crop-ratio", default=0.875, type=float, help="crop ratio for evaluation")
    add("--dist-eval", action="store_true", default=False, help=f"{DEAD}: validation is always distributed")
    add("--num_workers", default=12, type=int)
    add("--pin-mem", action="store_true", help="pin CPU memory in the DataLoaders")
    add("--no-pin-mem", action="store_false", dest="pin_mem", help="")
    parser.set_defaults(pin_mem=True)
    add("--local-rank", default=0, type=int, help="set by torch.distributed.launch; the rank is read from the env")
    add("--world_size", default=1, type=int, help="number of processes (overwritten from the launcher's env)")
    add("--dist_url", default="env://", help="url used to set up distributed training")
    add(
        "--ddp-sync-grads",
        action="store_true",
        help="[FIX, opt-in] average gradients (and broadcast buffers) across ranks; the original never syncs them",
    )
    add(
        "--fix-projector-decay",
        action="store_true",
        help="[FIX, opt-in] no weight decay on the projector, so it does not collapse to zero after one step",
    )
    return parser  # fmt: skip


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Parse `argv`, join the process group, seed every RNG with 14159265, then train or `--eval-student`."""
    from vkd import evaluate, train  # noqa: PLC0415 -- keeps `--help` and the parser free of model imports

    args = get_args_parser().parse_args(argv)
    distributed_utils.init_distributed_mode(args)
    torch.manual_seed(MAIN_SEED)
    np.random.seed(MAIN_SEED)
    random.seed(MAIN_SEED)
    if args.eval_student:
        evaluate.main(args)
    else:
        train.main(args)


if __name__ == "__main__":
    main()
