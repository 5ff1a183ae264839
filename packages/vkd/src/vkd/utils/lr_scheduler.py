"""co-advise's scheduler factory (`utils/lr_scheduler.py`): timm cosine or step schedules stepped per iteration."""

from __future__ import annotations

import torch
from timm.scheduler import CosineLRScheduler, StepLRScheduler
from timm.scheduler.scheduler import Scheduler


def build_scheduler(  # noqa: PLR0917 -- the original's signature
    optimizer: torch.optim.Optimizer,
    n_iter_per_epoch: int,
    epochs: int = 300,
    warmup_epochs: int = 0,
    decay_epochs: int = 30,
    min_lr: float = 5e-6,
    warmup_lr: float = 5e-6,
    scheduler_name: str = "cosine",
    decay_rate: float = 0.1,
) -> Scheduler:
    """A timm scheduler in iteration units (`t_in_epochs=False`): call `step_update(global_iter)` after each step.

    Training uses `cosine` with no warmup: lr(t) = min_lr + ½(base − min_lr)(1 + cos(π t / (epochs·ipe))).
    """
    num_steps = int(epochs * n_iter_per_epoch)
    warmup_steps = int(warmup_epochs * n_iter_per_epoch)
    if scheduler_name == "cosine":
        return CosineLRScheduler(
            optimizer,
            t_initial=num_steps,
            lr_min=min_lr,
            warmup_lr_init=warmup_lr,
            warmup_t=warmup_steps,
            cycle_limit=1,
            t_in_epochs=False,
        )
    if scheduler_name == "step":
        return StepLRScheduler(
            optimizer,
            decay_t=int(decay_epochs * n_iter_per_epoch),
            decay_rate=decay_rate,
            warmup_lr_init=warmup_lr,
            warmup_t=warmup_steps,
            t_in_epochs=False,
        )
    raise ValueError(f"scheduler_name must be 'cosine' or 'step', got {scheduler_name!r}")
