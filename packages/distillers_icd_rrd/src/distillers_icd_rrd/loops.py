"""The seed's epoch loops (RepDistiller's `helper/loops.py` and `helper/util.py`): vanilla, distillation, validation."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from distillers_icd_rrd.distillers.registry import get_distiller_names
from distillers_icd_rrd.fast_path import Runtime
from kdrepro_shared.distributed import DistributedEvalSampler, all_gather_uneven
from kdrepro_shared.errors import KdReproError

TRAIN_LINE = (
    "Epoch: [{0}][{1}/{2}]\t"
    "Time {batch_time.val:.3f} ({batch_time.avg:.3f})\t"
    "Data {data_time.val:.3f} ({data_time.avg:.3f})\t"
    "Loss {loss.val:.4f} ({loss.avg:.4f})\t"
    "Acc@1 {top1.val:.3f} ({top1.avg:.3f})\t"
    "Acc@5 {top5.val:.3f} ({top5.avg:.3f})"
)
TEST_LINE = (
    "Test: [{0}/{1}]\t"
    "Time {batch_time.val:.3f} ({batch_time.avg:.3f})\t"
    "Loss {loss.val:.4f} ({loss.avg:.4f})\t"
    "Acc@1 {top1.val:.3f} ({top1.avg:.3f})\t"
    "Acc@5 {top5.val:.3f} ({top5.avg:.3f})"
)
SUMMARY_LINE = " * Acc@1 {top1.avg:.3f} Acc@5 {top5.avg:.3f}"


class AverageMeter:
    """Computes and stores the latest value and the count-weighted average."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every update."""
        self.val: Any = 0
        self.avg: Any = 0
        self.sum: Any = 0
        self.count = 0

    def update(self, val: Any, n: int = 1) -> None:
        """Record `val`, standing for `n` samples."""
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def accuracy(output: torch.Tensor, target: torch.Tensor, topk: Sequence[int] = (1,)) -> list[torch.Tensor]:
    """Top-k accuracies in percent of the batch, each a 1-element tensor."""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        return [correct[:k].reshape(-1).float().sum(0, keepdim=True).mul_(100.0 / batch_size) for k in topk]


def adjust_learning_rate(epoch: int, opt: argparse.Namespace, optimizer: torch.optim.Optimizer) -> None:
    """Set lr = lr₀ · rate^(number of decay epochs passed); leave it alone before the first decay."""
    steps = sum(int(epoch > milestone) for milestone in opt.lr_decay_epochs)
    if steps > 0:
        new_lr = opt.learning_rate * (opt.lr_decay_rate**steps)
        for param_group in optimizer.param_groups:
            param_group["lr"] = new_lr


def train_vanilla(  # noqa: PLR0917 (RepDistiller's signature)
    epoch: int,
    train_loader: DataLoader,
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    opt: argparse.Namespace,
    *,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[Any, Any]:
    """One epoch of cross-entropy training; return (top-1, loss) averaged over the epoch."""
    model.train()
    run = Runtime.of(opt)
    meters = _meters()
    end = time.time()
    for idx, (images, labels) in enumerate(train_loader):
        meters["data_time"].update(time.time() - end)
        inputs, target = run.inputs(images), labels.to(run.device)
        with run.autocast():
            output = model(inputs)
            loss = criterion(output, target)
        _record(meters, output, target, loss)
        _step(loss, optimizer, scaler)
        meters["batch_time"].update(time.time() - end)
        end = time.time()
        _print_train(epoch, idx, len(train_loader), meters, opt)
    print(SUMMARY_LINE.format(**meters))
    return meters["top1"].avg, meters["loss"].avg


def train_distill(  # noqa: PLR0917 (RepDistiller's signature)
    epoch: int,
    train_loader: DataLoader,
    module_list: nn.ModuleList,
    criterion_list: nn.ModuleList,
    optimizer: torch.optim.Optimizer,
    opt: argparse.Namespace,
    *,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[Any, Any]:
    """One epoch of γ·CE + α·KD + β·method loss; module_list = [student, method modules..., teacher]."""
    for module in module_list:
        module.train()
    module_list[-1].eval()
    if opt.distill == "abound":
        module_list[1].eval()
    elif opt.distill == "factor":
        module_list[2].eval()
    criterion_cls, criterion_div, criterion_kd = criterion_list[0], criterion_list[1], criterion_list[2]
    model_s, model_t = module_list[0], module_list[-1]
    run = Runtime.of(opt)
    meters = _meters()
    end = time.time()
    for idx, data in enumerate(train_loader):
        meters["data_time"].update(time.time() - end)
        inputs, target, index = run.inputs(data[0]), data[1].to(run.device), data[2].to(run.device)
        contrast_idx = data[3].to(run.device) if opt.distill == "crd" else None

        preact = opt.distill == "abound"
        with run.autocast():
            feat_s, logit_s = model_s(inputs, is_feat=True, preact=preact)
            with torch.no_grad():
                feat_t, logit_t = model_t(inputs, is_feat=True, preact=preact)
                feat_t = [f.detach() for f in feat_t]

            loss_cls = criterion_cls(logit_s, target)
            loss_div = criterion_div(logit_s, logit_t)
            loss_kd = distill_loss(
                opt, module_list, criterion_kd, feat_s, feat_t, index=index, contrast_idx=contrast_idx
            )
            loss = opt.gamma * loss_cls + opt.alpha * loss_div + opt.beta * loss_kd

        _record(meters, logit_s, target, loss)
        _step(loss, optimizer, scaler)
        meters["batch_time"].update(time.time() - end)
        end = time.time()
        _print_train(epoch, idx, len(train_loader), meters, opt)
    print(SUMMARY_LINE.format(**meters))
    return meters["top1"].avg, meters["loss"].avg


def distill_loss(  # noqa: PLR0911 (one return per method)
    opt: argparse.Namespace,
    module_list: nn.ModuleList,
    criterion_kd: nn.Module,
    feat_s: Sequence[torch.Tensor],
    feat_t: Sequence[torch.Tensor],
    *,
    index: torch.Tensor,
    contrast_idx: torch.Tensor | None,
) -> Any:
    """The method term L_method for `opt.distill` from the student/teacher features (0 for kd, abound and fsp)."""
    method = opt.distill
    if method in ("kd", "abound", "fsp"):
        return 0
    if method == "hint":
        return criterion_kd(module_list[1](feat_s[opt.hint_layer]), feat_t[opt.hint_layer])
    if method == "crd":
        return criterion_kd(feat_s[-1], feat_t[-1], index, contrast_idx)
    if method in ("attention", "nst", "kdsvd"):
        return sum(criterion_kd(feat_s[1:-1], feat_t[1:-1]))
    if method == "similarity":
        return sum(criterion_kd([feat_s[-2]], [feat_t[-2]]))
    if method in ("rkd", "pkt", "rrd", "icd"):
        return criterion_kd(feat_s[-1], feat_t[-1])
    if method == "correlation":
        return criterion_kd(module_list[1](feat_s[-1]), module_list[2](feat_t[-1]))
    if method == "vid":
        return sum(c(f_s, f_t) for f_s, f_t, c in zip(feat_s[1:-1], feat_t[1:-1], criterion_kd, strict=False))
    if method == "factor":
        return criterion_kd(module_list[1](feat_s[-2]), module_list[2](feat_t[-2], is_factor=True))
    raise KdReproError(f"unknown --distill {method!r}; valid choices: {', '.join(get_distiller_names())}")


def validate(
    val_loader: DataLoader, model: nn.Module, criterion: nn.Module, opt: argparse.Namespace
) -> tuple[Any, Any, Any]:
    """Evaluate `model` in eval mode on the whole loader; return (top-1, top-5, loss).

    With a DistributedEvalSampler each rank scores its block, and the gathered outputs (the test set in order) are
    recorded in the loader's batch size, so every rank gets the numbers of a single-process run.
    """
    model.eval()
    run = Runtime.of(opt)
    if isinstance(val_loader.sampler, DistributedEvalSampler):
        return _validate_sharded(val_loader, model, criterion, run)
    meters = _meters()
    with torch.no_grad():
        end = time.time()
        for idx, (images, labels) in enumerate(val_loader):
            inputs, target = run.inputs(images), labels.to(run.device)
            with run.autocast():
                output = model(inputs)
                loss = criterion(output, target)
            _record(meters, output, target, loss)
            meters["batch_time"].update(time.time() - end)
            end = time.time()
            if idx % opt.print_freq == 0:
                print(TEST_LINE.format(idx, len(val_loader), **meters))
        print(SUMMARY_LINE.format(**meters))
    return meters["top1"].avg, meters["top5"].avg, meters["loss"].avg


def _validate_sharded(
    val_loader: DataLoader, model: nn.Module, criterion: nn.Module, run: Runtime
) -> tuple[Any, Any, Any]:
    """`validate` over a DistributedEvalSampler: score this rank's block, gather every block, record in order."""
    outputs, targets = [], []
    with torch.no_grad():
        for images, labels in val_loader:
            with run.autocast():
                outputs.append(model(run.inputs(images)).float())
            targets.append(labels.to(run.device))
        output = torch.cat(all_gather_uneven(torch.cat(outputs)))
        target = torch.cat(all_gather_uneven(torch.cat(targets)))
        meters = _meters()
        for start in range(0, len(target), val_loader.batch_size):
            chunk, chunk_target = (
                output[start : start + val_loader.batch_size],
                target[start : start + val_loader.batch_size],
            )
            _record(meters, chunk, chunk_target, criterion(chunk, chunk_target))
    print(SUMMARY_LINE.format(**meters))
    return meters["top1"].avg, meters["top5"].avg, meters["loss"].avg


def _step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """zero_grad, backward and step; through the GradScaler under `--precision fp16`."""
    optimizer.zero_grad()
    if scaler is None:
        loss.backward()
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def _meters() -> dict[str, AverageMeter]:
    """Fresh meters for one pass: batch/data time, loss, top-1, top-5."""
    return {name: AverageMeter() for name in ("batch_time", "data_time", "loss", "top1", "top5")}


def _record(meters: dict[str, AverageMeter], output: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
    """Add one batch's loss and top-1/top-5 to the meters, weighted by its size."""
    acc1, acc5 = accuracy(output, target, topk=(1, 5))
    n = output.size(0)
    meters["loss"].update(loss.item(), n)
    meters["top1"].update(acc1[0], n)
    meters["top5"].update(acc5[0], n)


def _print_train(epoch: int, idx: int, n_iter: int, meters: dict[str, AverageMeter], opt: argparse.Namespace) -> None:
    """Print the seed's per-iteration training line every `print_freq` iterations."""
    if idx % opt.print_freq == 0:
        print(TRAIN_LINE.format(epoch, idx, n_iter, **meters))
        sys.stdout.flush()
