"""Training and evaluation loops of the detection part (`vidt/engine.py`).

`train_one_epoch_with_teacher` is VkD's step: student forward (train mode), teacher forward (eval, no grad), set
losses + `loss_distil` on the pair's distillation tokens, weighted sum, backward (not divided by `n_iter_to_acc`, as
in the original), gradient clipping over all student parameters, AdamW step. `evaluate` runs the COCO evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from kdrepro_shared.errors import KdReproError
from kdrepro_shared.logging import NullSummaryWriter
from vkd.vidt.datasets.coco_eval import CocoEvaluator
from vkd.vidt.util.misc import MetricLogger, SmoothedValue, reduce_dict


def _to_device(samples: Any, targets: Iterable[dict], device: torch.device) -> tuple[Any, list[dict]]:
    return samples.to(device), [{k: v.to(device) for k, v in t.items()} for t in targets]


def _logged_losses(loss_dict: dict, weight_dict: dict) -> tuple[dict, dict, dict]:
    """Process-averaged loss terms: raw, `*_unscaled` copies, and the weighted ones."""
    reduced = reduce_dict(loss_dict)
    unscaled = {f"{k}_unscaled": v for k, v in reduced.items()}
    scaled = {k: v * weight_dict[k] for k, v in reduced.items() if k in weight_dict}
    return reduced, unscaled, scaled


def _train(  # noqa: PLR0917 -- model, teacher, criterion, loader, optimizer, device, epoch
    model: nn.Module,
    teacher_model: nn.Module | None,
    criterion: nn.Module,
    data_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    epoch: int,
    *,
    max_norm: float,
    n_iter_to_acc: int,
    print_freq: int,
    writer: Any,
) -> dict[str, float]:
    """One epoch, with or without a teacher; returns each logged meter's epoch average."""
    model.train()
    criterion.train()
    if teacher_model is not None:
        teacher_model.eval()
    logger = MetricLogger(delimiter=", ")
    logger.add_meter("lr", SmoothedValue(window_size=1, fmt="{value:.6f}"))
    logger.add_meter("class_error", SmoothedValue(window_size=1, fmt="{value:.2f}"))
    steps = len(data_loader) if hasattr(data_loader, "__len__") else 0
    for batch_idx, batch in enumerate(logger.log_every(data_loader, print_freq, f"Epoch: [{epoch}]")):
        samples, targets = _to_device(*batch, device)
        outputs = model(samples)
        if teacher_model is None:
            loss_dict = criterion(outputs, targets)
        else:
            with torch.no_grad():
                teacher_outputs = teacher_model(samples)
            distil_tokens = (outputs["distil_tokens"], teacher_outputs["distil_tokens"])
            loss_dict = criterion(outputs, targets, distil_tokens=distil_tokens)
        weight_dict = criterion.weight_dict
        losses = sum(loss_dict[k] * weight_dict[k] for k in loss_dict if k in weight_dict)

        reduced, unscaled, scaled = _logged_losses(loss_dict, weight_dict)
        loss_value = sum(scaled.values()).item()
        if not math.isfinite(loss_value):
            raise KdReproError(f"loss is {loss_value} at epoch {epoch}, iteration {batch_idx}; stopping training")

        if teacher_model is None:
            losses = losses / float(n_iter_to_acc)
        losses.backward()
        if (batch_idx + 1) % n_iter_to_acc == 0:
            if max_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            optimizer.zero_grad()

        logger.update(loss=loss_value, **scaled, **unscaled)
        logger.update(class_error=reduced["class_error"])
        logger.update(lr=optimizer.param_groups[0]["lr"])
        step = epoch * steps + batch_idx
        writer.add_scalar("train/loss", loss_value, step)
        for key, value in scaled.items():
            writer.add_scalar(f"train/{key}", float(value.detach()), step)
    logger.synchronize_between_processes()
    print("Averaged stats:", logger)
    return {k: meter.global_avg for k, meter in logger.meters.items()}


def train_one_epoch(  # noqa: PLR0917 -- the original's positional signature
    model: nn.Module,
    criterion: nn.Module,
    data_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    epoch: int,
    max_norm: float = 0,
    n_iter_to_acc: int = 1,
    print_freq: int = 100,
    writer: Any = None,
) -> dict[str, float]:
    """One epoch without a teacher (ViDT's own training); the loss is divided by `n_iter_to_acc`."""
    return _train(
        model, None, criterion, data_loader, optimizer, device, epoch,
        max_norm=max_norm, n_iter_to_acc=n_iter_to_acc, print_freq=print_freq, writer=writer or NullSummaryWriter(),
    )  # fmt: skip


def train_one_epoch_with_teacher(  # noqa: PLR0917 -- the original's positional signature
    model: nn.Module,
    teacher_model: nn.Module,
    criterion: nn.Module,
    data_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    epoch: int,
    max_norm: float = 0,
    n_iter_to_acc: int = 1,
    print_freq: int = 100,
    writer: Any = None,
) -> dict[str, float]:
    """One epoch of VkD distillation: set losses + 4.0 × the standardised smooth-L1 token loss."""
    return _train(
        model, teacher_model, criterion, data_loader, optimizer, device, epoch,
        max_norm=max_norm, n_iter_to_acc=n_iter_to_acc, print_freq=print_freq, writer=writer or NullSummaryWriter(),
    )  # fmt: skip


@torch.no_grad()
def evaluate(  # noqa: PLR0917 -- the original's positional signature
    model: nn.Module,
    criterion: nn.Module,
    postprocessors: dict[str, nn.Module],
    data_loader: Iterable,
    base_ds: Any,
    device: torch.device,
) -> tuple[dict[str, Any], CocoEvaluator]:
    """Losses and COCO bbox evaluation (12 stats under `coco_eval_bbox`) of `model` on `data_loader`."""
    model.eval()
    criterion.eval()
    logger = MetricLogger(delimiter=", ")
    logger.add_meter("class_error", SmoothedValue(window_size=1, fmt="{value:.2f}"))
    iou_types = tuple(k for k in ("segm", "bbox") if k in postprocessors)
    coco_evaluator = CocoEvaluator(base_ds, iou_types)
    for batch in logger.log_every(data_loader, 256, "Test:"):
        samples, targets = _to_device(*batch, device)
        outputs = model(samples)
        reduced, unscaled, scaled = _logged_losses(criterion(outputs, targets), criterion.weight_dict)
        logger.update(loss=sum(scaled.values()), **scaled, **unscaled)
        logger.update(class_error=reduced["class_error"])
        orig_sizes = torch.stack([t["orig_size"] for t in targets], dim=0)
        results = postprocessors["bbox"](outputs, orig_sizes)
        coco_evaluator.update({t["image_id"].item(): r for t, r in zip(targets, results, strict=True)})
    logger.synchronize_between_processes()
    print("Averaged stats:", logger)
    coco_evaluator.synchronize_between_processes()
    coco_evaluator.accumulate()
    coco_evaluator.summarize()
    stats: dict[str, Any] = {k: meter.global_avg for k, meter in logger.meters.items()}
    if "bbox" in postprocessors:
        stats["coco_eval_bbox"] = coco_evaluator.coco_eval["bbox"].stats.tolist()
    return stats, coco_evaluator
