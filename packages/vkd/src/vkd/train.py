"""Training of the original (`train.py`): data, Mixup, student + projector + teacher, DDP, AdamW, cosine, epochs.

Hard-coded as in the original: AdamW lr 5e-4 / wd 0.05, per-iteration cosine to 5e-6 without warmup, seeds
1 + rank, fp16 autocast with timm's NativeScaler on CUDA, checkpoints `latest.pth.tar` and `ep{E+1}.pth.tar`.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import logging
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from timm.data import Mixup
from timm.utils import NativeScaler
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from kdrepro_shared import checkpoints
from kdrepro_shared.errors import KdReproError
from kdrepro_shared.plain import args_to_dict
from vkd import distributed_utils
from vkd.augment import aug_generator
from vkd.datasets import build_dataset
from vkd.engine import train_one_epoch, validate
from vkd.losses import build_criterion
from vkd.models import (
    MODELS,
    attach_projector,
    create_teacher,
    exclude_projector_from_weight_decay,
    load_student_checkpoint,
)
from vkd.utils.logging import CSVLogger
from vkd.utils.lr_scheduler import build_scheduler
from vkd.utils.optimizer import create_optimizer

LOG_FREQ = 10
CHECKPOINT_FREQ = 20
EMA_MOMENTUM = (0.996, 1.0)
SAVED_SCRIPTS = {"train": "train", "engine": "engine", "models/deit": "models_deit", "datasets": "datasets"}

logger = logging.getLogger("vkd")


def setup_logging() -> None:
    """Log INFO lines to stdout, as the original's `logging.basicConfig(stream=sys.stdout, level=INFO)`."""
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def print_rank0(msg: str) -> None:
    """Log `msg` on rank 0 only."""
    if dist.get_rank() == 0:
        logger.info(msg)


def create_student(args: argparse.Namespace) -> nn.Module:
    """`MODELS[--student-model](num_classes, img_size)`; an unknown key is a one-line error (was a KeyError)."""
    if args.student_model not in MODELS:
        raise KdReproError(f"unknown --student-model {args.student_model!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[args.student_model](num_classes=args.nb_classes, img_size=args.input_size)


def build_loaders(args: argparse.Namespace, world_size: int, rank: int) -> tuple[DataLoader, DataLoader]:
    """Train (DistributedSampler, shuffled, drop_last, ThreeAugment) and val (padded DistributedSampler) loaders."""
    dataset_val, _ = build_dataset(is_train=False, args=args)
    dataset_train, args.nb_classes = build_dataset(is_train=True, args=args)
    sampler_train = DistributedSampler(dataset_train, num_replicas=world_size, rank=rank, shuffle=True)
    if len(dataset_val) % world_size != 0:
        print(
            "Warning: Enabling distributed evaluation with an eval dataset not divisible by process number. "
            "This will slightly alter validation results as extra duplicate entries are added to achieve "
            "equal num of samples per-process."
        )
    sampler_val = DistributedSampler(dataset_val, num_replicas=world_size, rank=rank, shuffle=False)
    loader_train = DataLoader(
        dataset_train,
        sampler=sampler_train,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        pin_memory=args.pin_mem,
        drop_last=True,
    )
    loader_train.dataset.transform = aug_generator(args)
    loader_val = DataLoader(
        dataset_val,
        sampler=sampler_val,
        batch_size=int(1.5 * args.batch_size),
        num_workers=args.num_workers,
        pin_memory=args.pin_mem,
        drop_last=False,
    )
    return loader_train, loader_val


def momentum_schedule(ipe: int, epochs: int) -> Iterator[float]:
    """The EMA momentum per iteration: 0.996 rising linearly to 1.0 over `ipe·epochs` steps (I-JEPA style)."""
    start, end = EMA_MOMENTUM
    total = ipe * epochs
    return (start + i * (end - start) / total for i in range(int(total) + 1))


def save_run_files(args: argparse.Namespace, output_dir: Path) -> None:
    """Create the output folder, copy the main sources into `scripts/` and dump the arguments to `params.yaml`."""
    (output_dir / "scripts").mkdir(parents=True, exist_ok=True)
    source_root = Path(__file__).resolve().parent
    for name, saved in SAVED_SCRIPTS.items():
        shutil.copy(source_root / f"{name}.py", output_dir / "scripts" / f"{saved}.py")
    (output_dir / "params.yaml").write_text(yaml.safe_dump(args_to_dict(args), sort_keys=False), encoding="utf-8")


def make_checkpoint_saver(output_dir: Path, rank: int) -> Callable[..., None]:
    """Return `save_checkpoint(...)`: rank 0 writes `latest.pth.tar`, plus `ep{E+1}.pth.tar` every 20th epoch."""

    def save_checkpoint(  # noqa: PLR0917 -- the original's positional signature
        student: nn.Module,
        student_ema: nn.Module | None,
        optimizer: torch.optim.Optimizer,
        loss_scaler: NativeScaler,
        epoch: int,
        loss_value: float,
        batch_size: int,
        world_size: int,
        lr: float,
    ) -> None:
        save_dict = {
            "student": student.state_dict(),
            "student_ema": student_ema.state_dict() if student_ema is not None else None,
            "optimizer": optimizer.state_dict(),
            "scaler": loss_scaler.state_dict(),
            "epoch": epoch,
            "loss": loss_value,
            "batch_size": batch_size,
            "world_size": world_size,
            "lr": lr,
        }
        if rank == 0:
            checkpoints.save(output_dir / "latest.pth.tar", save_dict, meta=False)
            if (epoch + 1) % CHECKPOINT_FREQ == 0:
                checkpoints.save(output_dir / f"ep{epoch + 1}.pth.tar", save_dict, meta=False)

    return save_checkpoint


def make_loss_scaler() -> NativeScaler:
    """timm's NativeScaler: fp16 GradScaler on CUDA; on CPU a disabled one (plain backward and step)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*CUDA is not available.*")
        return NativeScaler(device="cuda")


def main(args: argparse.Namespace) -> None:  # noqa: PLR0912, PLR0915 -- one linear recipe, as in the original
    """Train the student for `--epochs` (or only validate with `--eval`); expects `init_distributed_mode(args)` done."""
    setup_logging()
    if not (args.alpha > 0 and args.gamma > 0):
        raise KdReproError(
            f"--alpha {args.alpha} --gamma {args.gamma}: VkD needs both > 0 (the original crashes otherwise)"
        )
    local_rank = dist.get_rank()
    world_size = dist.get_world_size()
    device = distributed_utils.get_device(args)
    torch.manual_seed(1 + local_rank)
    np.random.seed(1 + local_rank)
    torch.backends.cudnn.benchmark = True
    print(f"I am rank {local_rank} in this world of size {world_size}!")

    data_loader_train, data_loader_val = build_loaders(args, world_size, local_rank)
    ipe = len(data_loader_train)
    dataset_val = data_loader_val.dataset

    mixup_fn = None
    mixup_active = args.mixup > 0 or args.cutmix > 0.0 or args.cutmix_minmax is not None
    if mixup_active:
        mixup_fn = Mixup(
            mixup_alpha=args.mixup,
            cutmix_alpha=args.cutmix,
            cutmix_minmax=args.cutmix_minmax,
            prob=args.mixup_prob,
            switch_prob=args.mixup_switch_prob,
            mode=args.mixup_mode,
            label_smoothing=args.smoothing,
            num_classes=args.nb_classes,
        )

    print_rank0(f"Creating student: {args.student_model}")
    student = create_student(args)
    print_rank0(f"number of params: {sum(p.numel() for p in student.parameters() if p.requires_grad)}")
    student_ema = None
    if args.student_ema:
        student_ema = copy.deepcopy(student)
        for p in student_ema.parameters():
            p.requires_grad = False

    print_rank0(f"Creating CNN teacher model: {args.teacher}")
    teacher = create_teacher(args.teacher, args.teacher_path).to(device)
    momentum_scheduler = momentum_schedule(ipe, args.epochs)
    projector = attach_projector(student, teacher.num_features)

    student.to(device)
    if student_ema is not None:
        student_ema.to(device)
    student = DistributedDataParallel(student, device_ids=[args.gpu] if device.type == "cuda" else None)
    student_without_ddp = student.module

    if args.student_ckpt != "none":  # non-strict as in the original; mismatches are logged, not hidden
        load_student_checkpoint(student_without_ddp, args.student_ckpt, strict=False)

    if world_size not in (1, 2):
        raise KdReproError(
            f"world size {world_size}: the original only supports 1 or 2 processes (hyper-parameters were tuned for "
            "an effective batch size < 1024)"
        )
    if not args.unscale_lr:  # the scaled value is never used by the optimizer, as in the original
        args.lr = args.lr * args.batch_size * world_size / 512.0

    optimizer = create_optimizer(student_without_ddp)
    if args.fix_projector_decay:
        exclude_projector_from_weight_decay(optimizer, projector)
    loss_scaler = make_loss_scaler()
    lr_scheduler = build_scheduler(
        optimizer,
        ipe,
        epochs=args.epochs,
        warmup_epochs=0,
        decay_epochs=10,
        min_lr=5e-6,
        warmup_lr=5e-6,
        scheduler_name="cosine",
        decay_rate=0.1,
    )
    criterion = build_criterion(mixup_active, args.smoothing, args.bce_loss)

    output_dir = Path(args.output_dir)
    if not args.resume and local_rank == 0:
        save_run_files(args, output_dir)
    dist.barrier()
    if args.resume:
        checkpoint = checkpoints.load(checkpoints.fetch(args.resume))
        student.load_state_dict(checkpoint["student"], strict=False)
        if "optimizer" in checkpoint:
            optimizer.load_state_dict(checkpoint["optimizer"])
        if "lr_scheduler" in checkpoint:
            lr_scheduler.load_state_dict(checkpoint["lr_scheduler"])
        if "epoch" in checkpoint:
            args.start_epoch = checkpoint["epoch"]
        if student_ema is not None:
            student_ema.load_state_dict(checkpoint["student_ema"])
        if "scaler" in checkpoint:
            loss_scaler.load_state_dict(checkpoint["scaler"])
        lr_scheduler.step(args.start_epoch)
        for _ in range(args.start_epoch * ipe):
            next(momentum_scheduler)

    if args.eval:
        acc1, _ = validate(data_loader_val, student, print_rank0, device)
        print_rank0(f"Accuracy of the network on the {len(dataset_val)} test images: {acc1:.1f}%")
        dist.barrier()
        return

    csv_logger = csv_logger_val = None
    if local_rank == 0:
        csv_logger = CSVLogger(
            output_dir / f"r{local_rank}_train.csv",
            ("%d", "epoch"),
            ("%d", "itr"),
            ("%.5f", "xe_loss"),
            ("%.5f", "repr_distill_loss"),
            ("%.5f", "kl_loss"),
        )
        csv_logger_val = CSVLogger(
            output_dir / f"r{local_rank}_val.csv", ("%d", "epoch"), ("%.5f", "acc1"), ("%.5f", "acc5")
        )
    save_checkpoint = make_checkpoint_saver(output_dir, local_rank)

    dist.barrier()
    print_rank0(f"Start training for {args.epochs} epochs")
    start_time = time.time()
    max_accuracy = 0.0
    kl = nn.KLDivLoss(reduction="batchmean")
    epoch = args.start_epoch
    for epoch in range(args.start_epoch, args.epochs):
        data_loader_train.sampler.set_epoch(epoch)
        loss_value = train_one_epoch(
            local_rank, csv_logger, print_rank0, student, teacher, criterion, kl, data_loader_train, optimizer,
            device, epoch, loss_scaler, args.clip_grad, momentum_scheduler, lr_scheduler, student_ema, mixup_fn,
            set_training_mode=args.train_mode, args=args,
        )  # fmt: skip
        lr_scheduler.step(epoch)
        checkpoint_args = (args.batch_size, world_size, optimizer.param_groups[0]["lr"])
        if args.output_dir:
            save_checkpoint(student, student_ema, optimizer, loss_scaler, epoch, loss_value, *checkpoint_args)
        acc1, acc5 = validate(data_loader_val, student, print_rank0, device)
        print_rank0(f"Accuracy of the network on the {len(dataset_val)} test images: {acc1:.1f}%")
        if local_rank == 0:
            csv_logger_val.log(epoch, acc1, acc5)
            if max_accuracy < acc1:
                max_accuracy = acc1
                if args.output_dir:
                    save_checkpoint(student, student_ema, optimizer, loss_scaler, epoch, loss_value, *checkpoint_args)
            print_rank0(f"Max accuracy: {max_accuracy:.2f}%")

    print_rank0(f"Training time {datetime.timedelta(seconds=int(time.time() - start_time))}")
    if student_ema is not None:
        acc1, acc5 = validate(data_loader_val, student_ema, print_rank0, device)
        print_rank0(f"Accuracy of the [ema] network on the {len(dataset_val)} test images: {acc1:.1f}%")
        if local_rank == 0:
            csv_logger_val.bar()
            csv_logger_val.log(epoch, acc1, acc5)
        dist.barrier()
