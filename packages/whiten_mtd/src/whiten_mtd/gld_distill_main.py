"""`gld_distill.py`: multi-teacher distillation of a ResNet-18/34 student on GLDv2 train-clean landmark pairs.

As the original: batches of b landmarks x 2 images (RandomResizedCrop 0.4-1, flip, ImageNet normalisation), frozen
PCA-whitened teachers, `MultiTeacherDistillLoss`, Adam (lr 1e-3, coupled weight decay 1e-6) with a per-iteration
cosine schedule to 1e-6, DDP, `config.yaml` + `log.log` in the checkpoint folder, `checkpoint_{epoch}.pt` every
`--snapshot_step` epochs and `--resume`. Added: TensorBoard scalars under `<ckpt_dir>/tensorboard` and a one-process
CPU / torchrun launch (see `whiten_mtd.distributed`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms as T
import yaml
from torch import nn
from torch.utils.data import DataLoader

from kdrepro_shared.errors import CheckpointError, KdReproError, exit_on_user_error
from kdrepro_shared.logging import create_summary_writer
from whiten_mtd import metric, utils
from whiten_mtd.datasets.gld import TRAIN_CLEAN_CSV, DistributedGroupSampler, GLDImageDataset, read_landmark_groups
from whiten_mtd.distributed import add_distributed_args, given_on_command_line, launch, wrap_ddp
from whiten_mtd.loss import STRATEGIES, MultiTeacherDistillLoss
from whiten_mtd.models.distill_model import MultiTeacherDistillModel, archs
from whiten_mtd.models.teachers import teacher_models
from whiten_mtd.models.weight_files import load_weight_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ETA_MIN = 1e-6
STUDENT_KEYS = "module.base_encoder."


def get_args_parser() -> argparse.ArgumentParser:
    """Every flag of the original (names, types, defaults), then the opt-in additions."""
    parser = argparse.ArgumentParser(
        description="Multi-teacher knowledge distill on Google Landmark V2 cleaned dataset."
    )
    add = parser.add_argument
    add("-a", "--arch", default="resnet18", type=str, metavar="ARCH", choices=list(archs), help="student model")
    add("-ts", "--teachers", required=True, nargs="+", metavar="LIST", help="teacher models to distill")
    add("-c", "--ckpt_dir", required=True, type=str, metavar="DIR", help="directory to save checkpoint files")
    add("--gld_root_path", default="/path/to/gldv2", type=str, metavar="PATH", help="root of the GLDv2 dataset")
    add("-b", "--batch_size", default=64, type=int, metavar="N", help="landmarks (image pairs) per process and step")
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
    utils.add_seed_arg(parser)
    add("--start_epoch", type=int, metavar="N", default=0, help="start from epoch i (overwritten by --resume)")
    add("--epochs", default=200, type=int, metavar="N", help="number of training epochs")
    add("--lr", default=1e-3, type=float, metavar="N", help="initial learning rate")
    add("--wd", "--weight-decay", default=1e-6, type=float, metavar="W", dest="weight_decay", help="weight decay")
    add("--snapshot_step", default=10, type=int, metavar="N", help="interval (epochs) to dump checkpoint")
    add("--embed_dim", default=512, type=int, help="embedding dimension")
    add("-tt", default=0.05, type=float, help="teacher distill temperature")
    add("-st", default=0.05, type=float, help="student distill temperature")
    add("-p", default=3, type=float, help="GeM power of the student and the teachers")
    add("--imsize", default=512, type=int, help="RandomResizedCrop output size")
    add("-s", "--strategy", default="maxmin", type=str, help=f"similarity fusion strategy: {', '.join(STRATEGIES)}")
    add(
        "--no_imagenet_init",
        action="store_true",
        help="[added] start the student trunk from random weights instead of torchvision's ImageNet ones (offline)",
    )
    return parser


def train_transform(imsize: int) -> T.Compose:
    """RandomResizedCrop(imsize, scale 0.4-1) -> horizontal flip -> ToTensor -> ImageNet Normalize."""
    return T.Compose(
        [
            T.RandomResizedCrop(imsize, scale=(0.4, 1.0)),
            T.RandomHorizontalFlip(p=0.5),
            T.ToTensor(),
            T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ]
    )


def validate_args(args: argparse.Namespace) -> None:
    """Fail before any process starts on inputs the original only tripped over later (or never reported)."""
    unknown = [t for t in args.teachers if t not in teacher_models]
    if unknown:
        raise KdReproError(f"unknown teacher(s) {', '.join(unknown)}; valid: {', '.join(teacher_models)}")
    if args.strategy not in STRATEGIES:
        raise KdReproError(f"--strategy {args.strategy!r} is not one of: {', '.join(STRATEGIES)}")
    for name in ("batch_size", "epochs", "snapshot_step", "imsize"):
        if getattr(args, name) <= 0:
            raise KdReproError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    csv_path = Path(args.gld_root_path) / TRAIN_CLEAN_CSV
    if not csv_path.is_file():
        raise KdReproError(f"{csv_path} not found: --gld_root_path must hold meta/train_clean.csv and train/")
    if args.resume is not None and not Path(args.resume).is_file():
        raise CheckpointError(f"no checkpoint found at {args.resume!r} (--resume expects a checkpoint_<epoch>.pt)")


def write_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """Dump the parsed flags to `<ckpt_dir>/config.yaml` (yaml.dump of the argument dict, as the original)."""
    ckpt_dir = Path(args.ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    flags = {action.dest: getattr(args, action.dest) for action in parser._actions if action.dest != "help"}
    path = ckpt_dir / "config.yaml"
    path.write_text(yaml.dump(flags), encoding="utf-8")
    return path


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags, write config.yaml, then train in every process of the job."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = get_args_parser()
    args = parser.parse_args(argv)
    validate_args(args)
    write_config(args, parser)
    utils.setup_logger()
    logging.getLogger("gld_distill").info(vars(args))
    launch(main_worker, args, world_size_given=given_on_command_line(argv, "--world_size"))


def main_worker(args: argparse.Namespace, device: torch.device) -> None:
    """One training process: data, model (DDP), optimiser, schedule, loss, optional resume, epochs and snapshots."""
    torch.backends.cudnn.benchmark = True
    utils.seed_process(args.seed, args.rank)
    utils.setup_logger(args.ckpt_dir if args.rank == 0 else None)
    logger = logging.getLogger(f"worker {args.rank}")
    logger.info(f"Using device {device}")

    groups = read_landmark_groups(args.gld_root_path)
    dataset = GLDImageDataset(Path(args.gld_root_path) / "train", train_transform(args.imsize))
    sampler = DistributedGroupSampler(args.rank, args.world_size, args.batch_size, groups, shuffle=True, drop_last=True)
    if len(sampler) == 0:
        raise KdReproError(
            f"{len(groups)} landmarks with >= 2 images in {args.gld_root_path} give no batch for "
            f"{args.world_size} process(es); need more landmarks than processes"
        )
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=args.num_workers, pin_memory=device.type == "cuda")

    model = MultiTeacherDistillModel(args, imagenet_init=not args.no_imagenet_init)
    logger.info(f"Build model {model.__class__.__name__}")
    logger.info(f"Number of parameters: {sum(p.numel() for p in model.parameters())}")
    logger.info(f"Number of trainable parameters: {sum(p.numel() for p in model.parameters() if p.requires_grad)}")
    model = wrap_ddp(model, device)

    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=args.weight_decay
    )
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=args.epochs * len(loader), eta_min=ETA_MIN
    )
    loss_fn = MultiTeacherDistillLoss(st=args.st, tt=args.tt, s=args.strategy, teachers=args.teachers).to(device)
    if args.resume is not None:
        resume(args, model, optimizer, lr_scheduler, loss_fn, logger)

    writer = create_summary_writer(Path(args.ckpt_dir) / "tensorboard")
    try:
        for epoch in range(args.start_epoch, args.epochs):
            train_one_epoch(model, loader, optimizer, lr_scheduler, loss_fn, device, epoch, args.epochs, writer)
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


def resume(  # noqa: PLR0917 -- the training objects it restores
    args: argparse.Namespace,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: nn.Module,
    logger: logging.Logger,
) -> None:
    """Restore student weights (non-strict: teachers are not saved), epoch, optimiser, schedule and win counter."""
    logger.info(f'Loading checkpoint "{args.resume}"...')
    checkpoint = load_weight_file(Path(args.resume), "whiten_mtd training checkpoint")
    missing = [key for key in ("epoch", "state_dict", "optimizer", "lr_scheduler", "loss_fn") if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{args.resume} is not a gld_distill checkpoint: it lacks {', '.join(missing)}")
    result = model.load_state_dict(checkpoint["state_dict"], strict=False)
    absent = [key for key in result.missing_keys if key.startswith(STUDENT_KEYS)]
    if absent:
        raise CheckpointError(f"{args.resume} lacks {len(absent)} student weights, e.g. {absent[0]} (wrong --arch?)")
    args.start_epoch = checkpoint["epoch"]
    optimizer.load_state_dict(checkpoint["optimizer"])
    lr_scheduler.load_state_dict(checkpoint["lr_scheduler"])
    loss_fn.load_state_dict(checkpoint["loss_fn"])
    logger.info("Loaded checkpoint.")


def train_one_epoch(  # noqa: PLR0917 -- the original's signature plus the TensorBoard writer
    model: nn.Module,
    train_loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: MultiTeacherDistillLoss,
    device: torch.device,
    epoch: int,
    total_epochs: int,
    writer: Any,
) -> None:
    """One pass over the landmark batches: first half of each batch = view 1, second half = view 2."""
    model.train()
    rank = utils.get_rank()
    logger = logging.getLogger("gld_distill_train") if rank == 0 else None
    metric_logger = metric.MetricLogger(logger, delimiter="    ")
    iters_per_epoch = len(train_loader)
    log_freq = iters_per_epoch // 16 if iters_per_epoch >= 16 else iters_per_epoch
    train_loader.batch_sampler.set_epoch(epoch)

    header = f"Epoch: [{epoch + 1}/{total_epochs}]"
    for batch_idx, (x, _img_ids) in metric_logger.log_every(
        train_loader, log_freq, header=header, iterations=iters_per_epoch
    ):
        half = x.size(0) // 2
        x1 = x[:half].to(device, non_blocking=True)
        x2 = x[half:].to(device, non_blocking=True)
        step_logger = logger if batch_idx % log_freq == 0 else None
        step = epoch * iters_per_epoch + batch_idx
        metric_logger.update(
            **distill_step(model, (x1, x2), optimizer, lr_scheduler, loss_fn, writer, step, step_logger)
        )
    log_epoch(metric_logger, logger, writer, epoch + 1)


def distill_step(  # noqa: PLR0917 -- one step's whole state, shared by gld_distill and svd_distill
    model: nn.Module,
    views: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: MultiTeacherDistillLoss,
    writer: Any,
    step: int,
    logger: logging.Logger | None,
) -> dict[str, float]:
    """One Adam step on two views, then the per-iteration lr step; logs lr and losses, returns the loss values.

    As in the original, `logger` (given every `log_freq` iterations on rank 0) gets the lr and the loss's win counts.
    """
    loss_dict = loss_fn(*model(*views))
    loss = sum(loss_dict.values())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    lr = lr_scheduler.get_last_lr()[0]
    if logger is not None:
        logger.info(f"learning rate: {lr:.8f}")
        logger.info(loss_fn)
    writer.add_scalar("train/lr", lr, step)
    lr_scheduler.step()
    values = {name: value.item() for name, value in loss_dict.items()}
    for name, value in values.items():
        writer.add_scalar(f"train/{name.replace(' ', '_')}", value, step)
    return values


def log_epoch(metric_logger: metric.MetricLogger, logger: logging.Logger | None, writer: Any, epoch: int) -> None:
    """All-reduce the epoch's meters and log their averages (rank 0) as the original's "Averaged stats" line."""
    metric_logger.sync()
    if logger is not None:
        logger.info("Averaged stats: " + str(metric_logger))
        for name, meter in metric_logger.meters.items():
            writer.add_scalar(f"epoch/{name.replace(' ', '_')}", meter.global_avg, epoch)
