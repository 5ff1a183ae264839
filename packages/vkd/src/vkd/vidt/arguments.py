"""Command-line flags of the detection part (`vidt/arguments.py`): every flag of the original, same types and defaults.

Booleans given as strings (`--aux_loss True`) read true only for "true" in any case, as in the original. Flags the
original parses without using are marked [DEAD] in their help.
"""

from __future__ import annotations

import argparse

DEAD = "[DEAD: parsed, unused, as in the original]"


def str_flag(value: object) -> bool:
    """The original's boolean parser: True only for the text 'true' (any case)."""
    return str(value).lower() == "true"


def get_args_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 -- one statement per flag
    """The original's parser (add_help=False, to be used as a parent), flag for flag."""
    parser = argparse.ArgumentParser("Set ViDT", add_help=False)
    add = parser.add_argument
    add("--lr", default=1e-4, type=float, help="AdamW lr of every parameter group")
    add("--lr_backbone", default=1e-5, type=float, help=f"{DEAD}: backbone groups also use --lr")
    add("--lr_drop", default=40, type=int, help="StepLR period (--sched step); extra checkpoint every lr_drop epochs")
    add("--batch_size", default=16, type=int, help="images per process")
    add("--weight_decay", default=1e-4, type=float)
    add("--epochs", default=50, type=int)
    add("--eval_size", default=800, type=int, help="validation short side (long side <= eval_size * 1333 / 800)")
    add("--clip_max_norm", default=0.1, type=float, help="gradient clipping max norm")

    # learning-rate schedule
    add("--sched", default="warmupcos", type=str, metavar="SCHEDULER", help='"warmupcos" (default) or "step"')
    add("--lr-noise", type=float, nargs="+", default=None, metavar="pct, pct", help="lr noise on/off epoch fractions")
    add("--lr-noise-pct", type=float, default=0.67, metavar="PERCENT", help="lr noise limit percent")
    add("--lr-noise-std", type=float, default=1.0, metavar="STDDEV", help="lr noise std-dev")
    add("--warmup-lr", type=float, default=1e-6, metavar="LR", help="warmup learning rate")
    add("--min-lr", type=float, default=1e-7, metavar="LR", help="floor of the cosine schedule")
    add("--warmup-epochs", type=int, default=0, metavar="N", help="epochs to warm up the lr")
    add("--decay-rate", "--dr", type=float, default=0.1, metavar="RATE", help="lr decay rate per cosine cycle")

    # model
    add(
        "--backbone_name", default="swin_tiny", type=str, help="swin_nano, swin_tiny, swin_small, swin_base_win7_22k, …"
    )
    add("--pre_trained", default="imagenet", type=str, help="'imagenet' (backbone weights), 'none', or a path")

    # matcher
    add("--set_cost_class", default=2, type=float, help="class coefficient in the matching cost")
    add("--set_cost_bbox", default=5, type=float, help="L1 box coefficient in the matching cost")
    add("--set_cost_giou", default=2, type=float, help="GIoU box coefficient in the matching cost")

    # loss coefficients
    add("--dice_loss_coef", default=1, type=float, help=DEAD)
    add("--bbox_loss_coef", default=5, type=float)
    add("--giou_loss_coef", default=2, type=float)
    add("--eos_coef", default=0.1, type=float, help=DEAD)

    # dataset
    add("--dataset_file", default="coco", help="only 'coco' is supported")
    add("--coco_path", default="/home/Research/MyData/COCO2017", type=str, help="COCO 2017 root")
    add("--coco_panoptic_path", type=str, help=DEAD)
    add("--remove_difficult", action="store_true", help=DEAD)

    # device and logs
    add("--output_dir", default="", help="run folder, created as logs/<output_dir> (empty: a name from the flags)")
    add("--device", default="cuda", help="device for training / testing (cuda: GPU LOCAL_RANK under a launcher)")
    add("--seed", default=42, type=int, help="seed (+ rank) for torch, numpy and random")
    add("--start_epoch", default=0, type=int, metavar="N", help="start epoch")
    add("--eval", default=False, type=str_flag, help="evaluation only (True/False)")
    add("--resume", default="", help="resume from a checkpoint (file, URL or registry name)")

    # process group
    add("--dist-url", default="tcp://127.0.0.1:3457", type=str, help="overwritten to env:// under a launcher")
    add("--dist-backend", default="nccl", type=str, help="overwritten: nccl on CUDA, gloo on the CPU")
    add("--rank", default=0, type=int, help="overwritten by the launcher's environment")
    add("--world_size", default=1, type=int, help="number of processes (overwritten by the launcher's environment)")
    add("--distributed", action="store_true", help="overwritten: True under a launcher")
    add("--num_workers", default=2, type=int)

    # positional encoding
    add("--position_embedding", default="sine", type=str, help=DEAD)

    # transformer
    add("--pos_dim", default=256, type=int, help=f"{DEAD}: --reduced_dim is the [DET] position size")
    add("--reduced_dim", default=256, type=int, help="d_model of the decoder and size of the [DET] positions")
    add("--dec_layers", default=6, type=int, help="number of decoder layers")
    add("--dim_feedforward", default=1024, type=int, help="overwritten by main.py: 1024 (vidt), 2048 (vidt_wo_neck)")
    add("--dropout", default=0.1, type=float, help="dropout in the decoder")
    add("--nheads", default=8, type=int, help="attention heads in the decoder")

    # deformable attention
    add("--dec_n_points", default=4, type=int)
    add("--mask_loss_coef", default=1, type=float, help=DEAD)
    add("--cls_loss_coef", default=2, type=float, help="weight of the focal classification loss")
    add("--focal_alpha", default=0.25, type=float)
    add("--lr_linear_proj_names", default=["reference_points", "sampling_offsets"], type=str, nargs="+", help=DEAD)
    add("--lr_linear_proj_mult", default=0.1, type=float, help=DEAD)
    add("--num_feature_levels", default=4, type=int, help="number of feature levels")

    # ViDT
    add("--method", default="vidt", type=str, help="vidt (VkD distillation) or vidt_wo_neck")
    add("--det_token_num", default=100, type=int, help="number of [DET] tokens (queries)")
    add("--cross_indices", default=[3], nargs="+", type=int, help="stages with [DET x PATCH] cross-attention")
    add("--aux_loss", default=False, type=str_flag, help="auxiliary decoding losses (True/False; README: True)")
    add("--with_box_refine", default=False, type=str_flag, help="iterative box refinement (True/False; README: True)")

    # distillation
    add("--distil_loss_coef", default=4.0, type=float, help="weight of the VkD distillation loss")
    add("--distil_model", default=None, type=str, help="teacher: vidt_nano, vidt_tiny, vidt_small or vidt_base")
    add("--distil_model_path", default=None, type=str, help="teacher checkpoint (file, URL or registry name)")
    add("--cross_scale_fusion", default=False, type=str_flag, help="cross-scale fusion (True/False)")
    add("--iou_aware", default=False, type=str_flag, help="IoU-aware loss (True/False)")
    add("--iouaware_loss_coef", default=2, type=float)
    add("--token_label", default=False, type=str_flag, help="token-label loss (True/False)")
    add("--token_loss_coef", default=2, type=float)

    # logs
    add("--n_iter_to_acc", default=1, type=int, help="gradient accumulation steps (the batch is divided by it)")
    add("--print_freq", default=100, type=int, help="iterations between training log lines")
    return parser  # fmt: skip
