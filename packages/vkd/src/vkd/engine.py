"""Train and validation loops of the original (`engine.py`).

`train_one_epoch` calls the student through `student.module` (bypassing DDP's forward), so by default DDP never
all-reduces gradients and each rank trains its own replica, as in the original. `--ddp-sync-grads` (opt-in)
broadcasts buffers from rank 0 before each step and averages every gradient across ranks, as DDP's forward would.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.distributed as dist
from timm.data import Mixup
from timm.scheduler.scheduler import Scheduler
from timm.utils import AverageMeter, NativeScaler, accuracy
from torch import nn

from vkd.losses import vkd_loss
from vkd.utils.logging import CSVLogger
from vkd.utils.tensors import reduce_tensor

PRINT_FREQ = 10


def autocast(device: torch.device) -> torch.autocast:
    """fp16 autocast on CUDA (the original's `torch.cuda.amp.autocast()`), disabled elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda")


def max_memory_mb() -> float:
    """Peak CUDA memory in MB (0 without CUDA)."""
    return torch.cuda.max_memory_allocated() / 1024.0**2 if torch.cuda.is_available() else 0.0


def sync_gradients(model: nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
    """Average each parameter's gradient over all ranks as soon as it is accumulated; return the hook handles."""
    world_size = dist.get_world_size()

    def average(param: torch.Tensor) -> None:
        dist.all_reduce(param.grad)
        param.grad.div_(world_size)

    return [p.register_post_accumulate_grad_hook(average) for p in model.parameters() if p.requires_grad]


def broadcast_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank, as DDP does before each forward."""
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def train_one_epoch(  # noqa: PLR0917 -- the original's positional signature
    local_rank: int,
    csv_logger: CSVLogger | None,
    print_rank0: Callable[[str], None],
    student: nn.parallel.DistributedDataParallel,
    teacher: nn.Module,
    criterion: nn.Module,
    kl: nn.Module,
    data_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    epoch: int,
    loss_scaler: NativeScaler,
    max_norm: float | None,
    momentum_scheduler: Iterator[float] | None = None,
    lr_scheduler: Scheduler | None = None,
    student_ema: nn.Module | None = None,
    mixup_fn: Mixup | None = None,
    set_training_mode: bool = True,
    args: argparse.Namespace | None = None,
) -> float:
    """One epoch of VkD: Mixup, CE + KL + representation loss under autocast, NativeScaler step, per-iter lr, EMA.

    Rank 0 writes one CSV row per iteration and logs running averages every 10 iterations; returns the last loss.
    `kl` and `set_training_mode` are accepted for the original's signature (the loss module computes the KL).
    """
    student.train()
    teacher.eval()
    sync = getattr(args, "ddp_sync_grads", False) and dist.get_world_size() > 1
    hooks = sync_gradients(student.module) if sync else []
    xe_meter, repr_meter, kl_meter = AverageMeter(), AverageMeter(), AverageMeter()
    num_iters = len(data_loader)
    loss_value = float("nan")
    try:
        for it, batch in enumerate(data_loader):
            t0 = time.time()
            samples, targets, _ = batch
            samples = samples.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            bsz = samples.shape[0]
            if mixup_fn is not None:
                samples, targets = mixup_fn(samples, targets)
            if sync:
                broadcast_buffers(student.module)
            with autocast(device):
                losses = vkd_loss(
                    student.module, teacher, samples, targets, criterion,
                    alpha=args.alpha, gamma=args.gamma, bce_loss=args.bce_loss,
                )  # fmt: skip
            xe_meter.update(losses.xe_loss.item(), bsz)
            repr_meter.update(losses.repr_distill_loss.item(), bsz)
            kl_meter.update(losses.kl_loss.item(), bsz)
            loss_value = losses.loss.item()
            if not math.isfinite(loss_value):
                print_rank0(f"Loss is {loss_value}, stopping training")
                sys.exit(1)

            is_second_order = getattr(optimizer, "is_second_order", False)
            loss_scaler(
                losses.loss, optimizer, clip_grad=max_norm, parameters=student.parameters(),
                create_graph=is_second_order,
            )  # fmt: skip
            optimizer.zero_grad()
            if device.type == "cuda":
                torch.cuda.synchronize()
            lr_scheduler.step_update(epoch * num_iters + it)

            if student_ema is not None:
                with torch.no_grad():
                    m = next(momentum_scheduler)
                    for param_q, param_k in zip(student.parameters(), student_ema.parameters(), strict=False):
                        param_k.data.mul_(m).add_((1.0 - m) * param_q.detach().data)

            if local_rank == 0:
                csv_logger.log(epoch, it, losses.xe_loss.item(), losses.repr_distill_loss.item(), losses.kl_loss.item())
                if it % PRINT_FREQ == 0:
                    iter_time = time.time() - t0  # the original scales one iteration's time by the print period
                    delta_time, estimated_time = iter_time * PRINT_FREQ, iter_time * num_iters
                    print_rank0(
                        f"Epoch: {epoch}, Iter: [{it}/{num_iters}], lr: [{optimizer.param_groups[0]['lr']:.6f}], "
                        f"Mem: {max_memory_mb():.2e}, "
                        f"XE Loss: {xe_meter.avg:.4f}, KL Loss: {kl_meter.avg:.4f}, "
                        f"Repr Loss: {repr_meter.avg:.4f}, "
                        f"t/print freq: {delta_time:.2f}s, t/epoch: {estimated_time:.2f}s, "
                        f"total est: {(estimated_time * 300.0) / (60.0 * 60.0 * 24.0):.3f} days, "
                    )
    finally:
        for hook in hooks:
            hook.remove()
    return loss_value


@torch.no_grad()
def validate(
    data_loader: Iterable,
    model: nn.Module,
    print_rank0: Callable[[str], None],
    device: torch.device,
    print_freq: int = 50,
) -> tuple[float, float]:
    """Top-1/top-5 (%) of `model(images)` (eval mode: mean of both heads), each batch all-reduced over ranks."""
    model.eval()
    criterion = nn.CrossEntropyLoss()
    batch_time, loss_meter, acc1_meter, acc5_meter = AverageMeter(), AverageMeter(), AverageMeter(), AverageMeter()
    end = time.time()
    for idx, (cpu_images, cpu_target, _) in enumerate(data_loader):
        images = cpu_images.to(device, non_blocking=True)
        target = cpu_target.to(device, non_blocking=True)
        with autocast(device):
            output = model(images)
            loss = criterion(output, target)
        acc1, acc5 = accuracy(output, target, topk=(1, 5))
        acc1, acc5, loss = reduce_tensor(acc1), reduce_tensor(acc5), reduce_tensor(loss)
        loss_meter.update(loss.item(), target.size(0))
        acc1_meter.update(acc1.item(), target.size(0))
        acc5_meter.update(acc5.item(), target.size(0))
        batch_time.update(time.time() - end)
        end = time.time()
        if idx % print_freq == 0 and dist.get_rank() == 0:
            print_rank0(
                f"Test: [{idx}/{len(data_loader)}]\t"
                f"Time {batch_time.val:.3f} ({batch_time.avg:.3f})\t"
                f"Loss {loss_meter.val:.4f} ({loss_meter.avg:.4f})\t"
                f"Acc@1 {acc1_meter.val:.3f} ({acc1_meter.avg:.3f})\t"
                f"Acc@5 {acc5_meter.val:.3f} ({acc5_meter.avg:.3f})\t"
                f"Mem {max_memory_mb():.0f}MB"
            )
    if dist.get_rank() == 0:
        print_rank0(f" * Acc@1 {acc1_meter.avg:.3f} Acc@5 {acc5_meter.avg:.3f}")
    return acc1_meter.avg, acc5_meter.avg
