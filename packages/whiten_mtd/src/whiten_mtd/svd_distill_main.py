"""`svd_distill.py`: multi-teacher distillation on SVD frames — a RECONSTRUCTION (the released script never ran).

The original called `distill_model.CrossViewDistillModel(args)` (never defined in any commit) and
`MultiTeacherDistillLoss(dt=...)` (no such argument). This module runs what the surrounding code implies:
`MultiTeacherDistillModel(args)` (student + frozen PCA-whitened teachers, as on GLDv2) and
`MultiTeacherDistillLoss(st=-t, tt=-t, s=-s)`. Positive pairs are two augmentations (`TwoCropsTransform`) of one
random frame per training video (`DistributedFrameSampler`, `set_epoch` with the 1-based epoch as the original
loop passed it); Adam (AdamW for "vit*" archs) with the original `--lr 0.3` default, per-iteration cosine to 1e-6,
snapshots every `--snapshot_step` epochs, resume with strict=False (the student-only state_dict cannot load
strictly into the full model, as the original tried).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdrepro_shared.errors import CheckpointError, KdReproError, exit_on_user_error
from kdrepro_shared.logging import create_summary_writer
from whiten_mtd import metric, utils
from whiten_mtd.datasets.svd.core import Frame, MetaData, TwoCropsTransform
from whiten_mtd.datasets.svd.loader import DistributedDistillLoader
from whiten_mtd.distributed import add_distributed_args, given_on_command_line, launch, wrap_ddp
from whiten_mtd.gld_distill_main import ETA_MIN, distill_step, log_epoch, resume, write_config
from whiten_mtd.loss import STRATEGIES, MultiTeacherDistillLoss
from whiten_mtd.models.distill_model import MultiTeacherDistillModel, archs
from whiten_mtd.models.teachers import teacher_models


def get_args_parser() -> argparse.ArgumentParser:
    """Every flag of the original (names, types, defaults, incl. the invalid `-a` default), then opt-in additions."""
    parser = argparse.ArgumentParser(description="Knowledge Distill on SVD dataset.")
    add = parser.add_argument
    add(
        "-a",
        "--arch",
        default="mobilenet_v2",
        type=str,
        metavar="ARCH",
        choices=list(archs),
        help="student model (the original default mobilenet_v2 is not one: pass -a resnet18 or resnet34)",
    )
    add(
        "-ts",
        "--teachers",
        required=True,
        nargs="+",
        metavar="LIST",
        help="teacher models (README: mocov3 barlowtwins)",
    )
    add("-c", "--ckpt_dir", required=True, type=str, metavar="DIR", help="directory to save checkpoint files")
    add("-dm", "--dataset_meta", default="config/svd.yaml", type=str, metavar="FILE", help="dataset meta file")
    add("-b", "--batch_size", default=64, type=int, metavar="N", help="videos (frame pairs) per process and step")
    add("--num_workers", default=8, type=int, metavar="N", help="number of data loader workers")
    add("-r", "--resume", default=None, type=str, metavar="DIR", help="checkpoint model to resume")
    add(
        "--path_to_pretrained_weights",
        default="/path/to/pretrained_weights",
        type=str,
        metavar="DIR",
        help="path to pretrained teacher models and whitening weights",
    )
    add_distributed_args(parser, "tcp://localhost:2023")
    add("--start_epoch", type=int, metavar="N", default=0, help="start from epoch i (overwritten by --resume)")
    add("--epochs", default=200, type=int, metavar="N", help="number of training epochs")
    add("--warmup_epochs", default=5, type=int, metavar="N", help="[unused, as in the original] warm-up epochs")
    add("--lr", default=0.3, type=float, metavar="N", help="initial learning rate (original default, with Adam)")
    add("-t", default=0.05, type=float, metavar="N", help="distillation temperature (student and teacher)")
    add("--wd", "--weight-decay", default=1e-6, type=float, metavar="W", dest="weight_decay", help="weight decay")
    add("--snapshot_step", default=10, type=int, metavar="N", help="interval (epochs) to dump checkpoint")
    add("-p", default=1, type=float, help="GeM power of the student and the teachers (1 = average pooling)")
    add("--embed_dim", default=512, type=int, help="embedding dimension")
    add("-s", "--strategy", default="maxmin", type=str, help=f"similarity fusion strategy: {', '.join(STRATEGIES)}")
    add(
        "--no_imagenet_init",
        action="store_true",
        help="[added] start the student trunk from random weights instead of torchvision's ImageNet ones (offline)",
    )
    return parser


def validate_args(args: argparse.Namespace) -> None:
    """One-line errors for what the original crashed on."""
    if args.arch not in archs:
        raise KdReproError(
            f"student arch {args.arch!r} does not exist (the original default); pass -a resnet18|resnet34"
        )
    unknown = [t for t in args.teachers if t not in teacher_models]
    if unknown:
        raise KdReproError(f"unknown teachers {unknown}; choose from {', '.join(teacher_models)}")
    if args.strategy not in STRATEGIES:
        raise KdReproError(f"-s {args.strategy!r} is not a fusion strategy; choose one of {', '.join(STRATEGIES)}")
    for name in ("batch_size", "epochs", "snapshot_step"):
        if getattr(args, name) <= 0:
            raise KdReproError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if args.resume is not None and not Path(args.resume).is_file():
        raise CheckpointError(f"no checkpoint found at {args.resume!r} (--resume expects a checkpoint_<epoch>.pt)")


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags, write config.yaml, then train in every process of the job."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = get_args_parser()
    args = parser.parse_args(argv)
    validate_args(args)
    write_config(args, parser)
    utils.setup_logger()
    logging.getLogger("svd_distill").info(vars(args))
    launch(main_worker, args, world_size_given=given_on_command_line(argv, "--world_size"))


def build_optimizer(args: argparse.Namespace, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW for ViT students (none exist in `archs`), else Adam with L2-coupled weight decay, as the original."""
    params = [p for p in model.parameters() if p.requires_grad]
    if args.arch.startswith("vit"):
        return torch.optim.AdamW(params, lr=args.lr)
    return torch.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)


def main_worker(args: argparse.Namespace, device: torch.device) -> None:
    """One training process: frames, model (DDP), optimiser, cosine schedule, loss, optional resume, epochs."""
    torch.backends.cudnn.benchmark = True
    utils.setup_logger(args.ckpt_dir if args.rank == 0 else None)
    logger = logging.getLogger(f"dist_worker {args.rank}")
    logger.info(f"Using device {device}")

    meta = MetaData(utils.load_config(args.dataset_meta))
    dataset = Frame(meta.frm_root_path, meta.frm_cnt, TwoCropsTransform())
    loader = DistributedDistillLoader.build(dataset, meta, batch_size=args.batch_size, num_workers=args.num_workers)
    if len(loader) == 0:
        raise KdReproError(f"{len(meta.train_ids)} training videos give no batch for {args.world_size} process(es)")

    model = MultiTeacherDistillModel(args, imagenet_init=not args.no_imagenet_init)
    logger.info(f"Build model {model.__class__.__name__}")
    logger.info(f"Number of parameters: {sum(p.numel() for p in model.parameters())}")
    logger.info(f"Number of trainable parameters: {sum(p.numel() for p in model.parameters() if p.requires_grad)}")
    model = wrap_ddp(model, device)
    optimizer = build_optimizer(args, model)
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=args.epochs * len(loader), eta_min=ETA_MIN
    )
    loss_fn = MultiTeacherDistillLoss(st=args.t, tt=args.t, s=args.strategy, teachers=args.teachers).to(device)
    if args.resume is not None:
        resume(args, model, optimizer, lr_scheduler, loss_fn, logger)

    writer = create_summary_writer(Path(args.ckpt_dir) / "tensorboard")
    try:
        for epoch in range(args.start_epoch, args.epochs):
            train_one_epoch(model, loader, optimizer, lr_scheduler, loss_fn, device, epoch + 1, args.epochs, writer)
            if (epoch + 1) % args.snapshot_step == 0 and args.rank == 0:
                state = {
                    "epoch": epoch + 1,
                    "state_dict": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "lr_scheduler": lr_scheduler.state_dict(),
                    "loss_fn": loss_fn.state_dict(),
                }
                utils.save_checkpoint(state, False, args.ckpt_dir, filename=f"checkpoint_{epoch + 1}.pt")
    finally:
        writer.close()


def train_one_epoch(  # noqa: PLR0917 -- the original's signature plus the TensorBoard writer
    model: nn.Module,
    train_loader: DistributedDistillLoader,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: MultiTeacherDistillLoss,
    device: torch.device,
    epoch: int,
    total_epochs: int,
    writer: Any,
) -> None:
    """One pass over the frame-pair batches; `epoch` is 1-based (it also reseeds the video permutation)."""
    model.train()
    rank = utils.get_rank()
    logger = logging.getLogger("svd_distill_train") if rank == 0 else None
    metric_logger = metric.MetricLogger(logger, delimiter="    ")
    iters = len(train_loader)
    log_freq = iters // 16 if iters >= 16 else iters
    train_loader.batch_sampler.set_epoch(epoch)
    header = f"Epoch: [{epoch}/{total_epochs}]"
    for batch_idx, (x1, x2, _) in metric_logger.log_every(train_loader, log_freq, header=header, iterations=iters):
        views = (x1.to(device, non_blocking=True), x2.to(device, non_blocking=True))
        step_logger = logger if batch_idx % log_freq == 0 else None
        step = (epoch - 1) * iters + batch_idx
        metric_logger.update(**distill_step(model, views, optimizer, lr_scheduler, loss_fn, writer, step, step_logger))
    log_epoch(metric_logger, logger, writer, epoch)


if __name__ == "__main__":
    main()
