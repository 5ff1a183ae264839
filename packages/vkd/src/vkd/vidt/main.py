"""Detection entry point of VkD (`vidt/main.py`): ViDT student + VkD projectors, ViDT teacher, train or `--eval True`.

Launch as the original did, from `packages/vkd/vidt`: `torchrun --nproc_per_node=N main.py ...`, `python -m
torch.distributed.launch --nproc_per_node=N --use_env main.py ...`, or `python main.py ...` for one process (no
process group, as in the original). The run folder is `logs/<--output_dir>` under the working directory; it receives
`checkpoint.pth` every epoch (and `checkpoint{epoch:04}.pth` before an lr drop and every 100 epochs), `log.txt` (one
JSON line per epoch), `eval/latest.pth` (COCOeval's `eval` dict), `eval.pth` for `--eval True`, and TensorBoard events.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from kdrepro_shared.device import resolve_device
from kdrepro_shared.errors import KdReproError, exit_on_user_error
from kdrepro_shared.logging import create_summary_writer
from vkd.vidt.arguments import get_args_parser
from vkd.vidt.datasets import build_dataset, get_coco_api_from_dataset
from vkd.vidt.engine import evaluate, train_one_epoch, train_one_epoch_with_teacher
from vkd.vidt.methods import (
    TEACHERS,
    attach_projectors,
    build_distil_model,
    build_model,
    load_detector_state,
    load_teacher_checkpoint,
    read_checkpoint,
)
from vkd.vidt.util import misc as utils
from vkd.vidt.util.scheduler import create_scheduler

LOG_ROOT = "logs"
OPEN_FILES = 4096


def get_main_parser() -> argparse.ArgumentParser:
    """Every flag of `arguments.py`, plus the `--local-rank` that a launcher without --use_env passes (ignored)."""
    parser = argparse.ArgumentParser("ViDT training and evaluation script", parents=[get_args_parser()])
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    return parser


def finalize_args(args: argparse.Namespace) -> argparse.Namespace:
    """What the original's `__main__` does: the method's FFN width and the run folder `logs/<output_dir>`."""
    args.dim_feedforward = 2048 if args.method == "vidt_wo_neck" else 1024
    if args.output_dir == "":
        args.output_dir = f"{args.method}-{args.backbone_name.upper()}-batch-{args.batch_size}-epoch-{args.epochs}"
    args.output_dir = str(Path(LOG_ROOT) / args.output_dir)
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    print("log", args.output_dir)
    return args


def raise_open_file_limit() -> None:
    """Allow 4096 open files (data-loader workers), as the original; capped by the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def build_optimizer(model: nn.Module, args: argparse.Namespace) -> torch.optim.AdamW:
    """AdamW over 3 groups: non-backbone (incl. projectors), backbone no-decay (1-D, biases, [DET] token/pos), rest.

    Every group uses `--lr` (`--lr_backbone` is dead, as in the original); decay is `--weight_decay` except group 2.
    """
    skip = model.backbone.no_weight_decay()
    head, backbone_no_decay, backbone_decay = [], [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if "backbone" not in name:
            head.append(param)
        elif param.ndim == 1 or name.endswith(".bias") or name.split(".")[-1] in skip:
            backbone_no_decay.append(param)
        else:
            backbone_decay.append(param)
    print(f"num of total trainable prams:{sum(p.numel() for p in model.parameters() if p.requires_grad)}")
    groups = [
        {"params": head},
        {"params": backbone_no_decay, "weight_decay": 0.0, "lr": args.lr},
        {"params": backbone_decay, "lr": args.lr},
    ]
    return torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)


def build_student(args: argparse.Namespace, device: torch.device) -> tuple[nn.Module, nn.Module, dict]:
    """The student with VkD's six projectors (always, as the original), its criterion and post-processors."""
    model, criterion, postprocessors = build_model(args)
    attach_projectors(model)
    return model.to(device), criterion, postprocessors


def build_teacher(args: argparse.Namespace, device: torch.device) -> nn.Module | None:
    """The `--distil_model` teacher loaded strictly from `--distil_model_path`, or None without `--distil_model`."""
    if args.distil_model is None:
        return None
    if args.distil_model not in TEACHERS:
        raise KdReproError(f"--distil_model {args.distil_model!r} is not supported; valid: {', '.join(TEACHERS)}")
    if not args.distil_model_path:
        raise KdReproError(
            "--distil_model needs --distil_model_path (a teacher checkpoint: file, URL or registry name)"
        )
    print("Distillation On -- Model:", args.distil_model, "Path:", args.distil_model_path)
    teacher = build_distil_model(args)
    teacher.has_projections = False
    load_teacher_checkpoint(teacher, args.distil_model_path)
    print("complete to load the teacher model from", args.distil_model_path)
    return teacher.to(device)


def make_loaders(args: argparse.Namespace) -> tuple[DataLoader, DataLoader, Any, Any]:
    """Train loader (random or distributed sampler, drop_last batches), val loader, the train sampler, val COCO api."""
    dataset_train = build_dataset(image_set="train", args=args)
    dataset_val = build_dataset(image_set="val", args=args)
    print("# train:", len(dataset_train), ", # val", len(dataset_val))
    if args.distributed:
        sampler_train = DistributedSampler(dataset_train)
        sampler_val = DistributedSampler(dataset_val, shuffle=False)
    else:
        sampler_train = torch.utils.data.RandomSampler(dataset_train)
        sampler_val = torch.utils.data.SequentialSampler(dataset_val)
    batches = torch.utils.data.BatchSampler(sampler_train, args.batch_size, drop_last=True)
    loader_train = DataLoader(
        dataset_train, batch_sampler=batches, collate_fn=utils.collate_fn, num_workers=args.num_workers
    )
    loader_val = DataLoader(
        dataset_val, args.batch_size, sampler=sampler_val, drop_last=False,
        collate_fn=utils.collate_fn, num_workers=args.num_workers,
    )  # fmt: skip
    return loader_train, loader_val, sampler_train, get_coco_api_from_dataset(dataset_val)


def resume(args: argparse.Namespace, model: nn.Module, optimizer: torch.optim.Optimizer, lr_scheduler: Any) -> None:
    """Load `--resume` (model non-strictly, as the original); when training also optimizer, scheduler, next epoch."""
    checkpoint = read_checkpoint(args.resume)
    report = load_detector_state(model, checkpoint["model"], strict=False)
    print("load a checkpoint from", args.resume, "" if report.ok else f"(keys: {report.summary()})")
    if not args.eval and all(k in checkpoint for k in ("optimizer", "lr_scheduler", "epoch")):
        optimizer.load_state_dict(checkpoint["optimizer"])
        lr_scheduler.load_state_dict(checkpoint["lr_scheduler"])
        args.start_epoch = checkpoint["epoch"] + 1


def save_checkpoints(args: argparse.Namespace, model: nn.Module, optimizer, lr_scheduler, epoch: int) -> None:
    """`checkpoint.pth` (+ `checkpoint{epoch:04}.pth` before an lr drop / every 100 epochs), written atomically."""
    output_dir = Path(args.output_dir)
    paths = [output_dir / "checkpoint.pth"]
    if (epoch + 1) % args.lr_drop == 0 or (epoch + 1) % 100 == 0:
        paths.append(output_dir / f"checkpoint{epoch:04}.pth")
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": lr_scheduler.state_dict(),
        "epoch": epoch,
        "args": args,
    }
    for path in paths:
        utils.save_on_master(state, path)


def log_epoch(args: argparse.Namespace, log_stats: dict, coco_evaluator: Any, epoch: int, writer: Any) -> None:
    """Append the epoch's JSON line to `log.txt`, save COCOeval's `eval` dict, write TensorBoard scalars."""
    if not utils.is_main_process():
        return
    output_dir = Path(args.output_dir)
    with (output_dir / "log.txt").open("a") as f:
        f.write(json.dumps(log_stats) + "\n")
    (output_dir / "eval").mkdir(exist_ok=True)
    names = ["latest.pth"] + ([f"{epoch:03}.pth"] if epoch % 50 == 0 else [])
    for name in names:
        utils.save_on_master(coco_evaluator.coco_eval["bbox"].eval, output_dir / "eval" / name)
    for key, value in log_stats.items():
        if isinstance(value, (int, float)) and key != "epoch":
            writer.add_scalar(f"epoch/{key}", value, epoch)
    for name, value in zip(
        ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L"), log_stats["test_coco_eval_bbox"], strict=False
    ):
        writer.add_scalar(f"coco/{name}", value, epoch)
    writer.flush()


def run(args: argparse.Namespace) -> dict[str, Any] | None:  # noqa: PLR0912, PLR0915 -- the original's main flow, in order
    """The original `main(args)`: train for `--epochs` (evaluating every epoch) or, with `--eval True`, evaluate once.

    Returns the last evaluation's stats (on every rank), or None when there was nothing to run.
    """
    raise_open_file_limit()
    if args.n_iter_to_acc > 1:
        if args.batch_size % args.n_iter_to_acc != 0:
            raise KdReproError(
                f"--batch_size {args.batch_size} is not divisible by --n_iter_to_acc {args.n_iter_to_acc}"
            )
        print(f"Gradient accumulation: batch {args.batch_size} -> {args.batch_size // args.n_iter_to_acc}, "
              f"updated every {args.n_iter_to_acc} steps.")  # fmt: skip
        args.batch_size //= args.n_iter_to_acc
    utils.init_distributed_mode(args)
    print(args)
    device = resolve_device(args.device)
    if device.type == "cuda" and args.distributed:
        device = torch.device("cuda", args.gpu)
    seed = args.seed + utils.get_rank()
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)

    model, criterion, postprocessors = build_student(args, device)
    teacher_model = build_teacher(args, device)
    model_without_ddp = model
    if args.distributed:
        ids = [args.gpu] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
        model_without_ddp = model.module
        if teacher_model is not None:
            teacher_model = nn.parallel.DistributedDataParallel(
                teacher_model, device_ids=ids, find_unused_parameters=True
            )
    n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print("number of params:", n_parameters)
    if teacher_model is not None:  # the original then logs the teacher's count as n_parameters (kept)
        n_parameters = sum(p.numel() for p in teacher_model.parameters() if p.requires_grad)
        print("number of params for teacher:", n_parameters)

    optimizer = build_optimizer(model_without_ddp, args)
    lr_scheduler, _ = create_scheduler(args, optimizer)
    loader_train, loader_val, sampler_train, base_ds = make_loaders(args)
    output_dir = Path(args.output_dir)
    if args.resume:
        resume(args, model_without_ddp, optimizer, lr_scheduler)

    if args.eval:
        test_stats, coco_evaluator = evaluate(model, criterion, postprocessors, loader_val, base_ds, device)
        if args.output_dir:
            utils.save_on_master(coco_evaluator.coco_eval["bbox"].eval, output_dir / "eval.pth")
        return test_stats

    writer = create_summary_writer(output_dir, enabled=bool(args.output_dir))
    print("Start training")
    start_time = time.time()
    test_stats = None
    for epoch in range(args.start_epoch, args.epochs):
        if args.distributed:
            sampler_train.set_epoch(epoch)
        common = {"max_norm": args.clip_max_norm, "n_iter_to_acc": args.n_iter_to_acc, "print_freq": args.print_freq}
        if teacher_model is None:
            train_stats = train_one_epoch(
                model, criterion, loader_train, optimizer, device, epoch, **common, writer=writer
            )
        else:
            train_stats = train_one_epoch_with_teacher(
                model, teacher_model, criterion, loader_train, optimizer, device, epoch, **common, writer=writer
            )
        lr_scheduler.step(epoch)
        if args.output_dir:
            save_checkpoints(args, model_without_ddp, optimizer, lr_scheduler, epoch)
        test_stats, coco_evaluator = evaluate(model, criterion, postprocessors, loader_val, base_ds, device)
        log_stats = {
            **{f"train_{k}": v for k, v in train_stats.items()},
            **{f"test_{k}": v for k, v in test_stats.items()},
            "epoch": epoch,
            "n_parameters": n_parameters,
        }
        if args.output_dir:
            log_epoch(args, log_stats, coco_evaluator, epoch, writer)
    writer.close()
    print(f"Training time {datetime.timedelta(seconds=int(time.time() - start_time))}")
    return test_stats


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Parse `argv` (as `python main.py ...` would), prepare the run folder, then train or evaluate."""
    args = finalize_args(get_main_parser().parse_args(argv))
    return run(args)


if __name__ == "__main__":
    main()
