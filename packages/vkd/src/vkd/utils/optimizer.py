"""Swin-style optimizer factory of the original (`utils/optimizer.py`): AdamW with two weight-decay groups."""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import Any

from torch import nn, optim


def create_optimizer(  # noqa: PLR0917 -- the original's signature
    model: nn.Module,
    optimizer_name: str = "adamw",
    momentum: float = 0.9,
    base_lr: float = 5e-4,
    weight_decay: float = 0.05,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> optim.Optimizer:
    """AdamW (or Nesterov SGD) over `set_weight_decay`'s groups; training calls it with these defaults only.

    The projector's `parametrizations.weight.original` is 2-D, so it lands in the decayed group (the collapse quirk).
    """
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    skip_keywords = model.no_weight_decay_keywords() if hasattr(model, "no_weight_decay_keywords") else set()
    parameters = set_weight_decay(model, skip, skip_keywords)
    if optimizer_name == "sgd":
        return optim.SGD(parameters, momentum=momentum, nesterov=True, lr=base_lr, weight_decay=weight_decay)
    if optimizer_name == "adamw":
        return optim.AdamW(parameters, eps=eps, betas=betas, lr=base_lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer_name must be 'adamw' or 'sgd', got {optimizer_name!r}")


def set_weight_decay(
    model: nn.Module, skip_list: Container[str] = (), skip_keywords: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Two groups, decayed first: 1-D tensors, biases and names in `skip_list`/`skip_keywords` get weight decay 0."""
    has_decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if (
            param.ndim == 1
            or name.endswith(".bias")
            or name in skip_list
            or check_keywords_in_name(name, skip_keywords)
        ):
            no_decay.append(param)
        else:
            has_decay.append(param)
    return [{"params": has_decay}, {"params": no_decay, "weight_decay": 0.0}]


def check_keywords_in_name(name: str, keywords: Iterable[str] = ()) -> bool:
    """Whether any of `keywords` occurs in `name`."""
    return any(keyword in name for keyword in keywords)
