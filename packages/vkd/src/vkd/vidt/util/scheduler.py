"""ViDT's LR schedules (`util/scheduler.py`, from YOLOS): epoch-wise cosine (warm-up, noise optional) or StepLR.

The scheduler's `state_dict()` is its attribute dict without the optimizer, the layout the original's checkpoints
store under `lr_scheduler`, so they resume here. `step(epoch)` is called at the end of epoch `epoch`, so epoch e
trains at lr(max(e − 1, 0)), as in the original.
"""

from __future__ import annotations

import argparse
import logging
import math
from typing import Any

import torch

from kdrepro_shared.errors import KdReproError

logger = logging.getLogger(__name__)
SCHEDULES = ("warmupcos", "step")


class Scheduler:
    """Sets `param_group_field` of every optimizer group from `get_epoch_values`/`get_update_values` (timm-style)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        param_group_field: str,
        *,
        noise_range_t: Any = None,
        noise_type: str = "normal",
        noise_pct: float = 0.67,
        noise_std: float = 1.0,
        noise_seed: int | None = None,
        initialize: bool = True,
    ) -> None:
        self.optimizer = optimizer
        self.param_group_field = param_group_field
        self._initial_param_group_field = f"initial_{param_group_field}"
        for i, group in enumerate(self.optimizer.param_groups):
            if initialize:
                if param_group_field not in group:
                    raise KeyError(f"{param_group_field} missing from param_groups[{i}]")
                group.setdefault(self._initial_param_group_field, group[param_group_field])
            elif self._initial_param_group_field not in group:
                raise KeyError(f"{self._initial_param_group_field} missing from param_groups[{i}]")
        self.base_values = [group[self._initial_param_group_field] for group in self.optimizer.param_groups]
        self.metric = None
        self.noise_range_t = noise_range_t
        self.noise_pct = noise_pct
        self.noise_type = noise_type
        self.noise_std = noise_std
        self.noise_seed = noise_seed if noise_seed is not None else 42
        self.update_groups(self.base_values)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes saved by `state_dict`."""
        self.__dict__.update(state_dict)

    def get_epoch_values(self, epoch: int) -> list[float] | None:
        """Values for the end of `epoch` (None: leave the groups alone)."""
        return None

    def get_update_values(self, num_updates: int) -> list[float] | None:
        """Values after `num_updates` optimizer steps (None: leave the groups alone)."""
        return None

    def step(self, epoch: int, metric: float | None = None) -> None:
        """Called at the end of epoch `epoch`: set the values for the next one."""
        self.metric = metric
        values = self.get_epoch_values(epoch)
        if values is not None:
            self.update_groups(self._add_noise(values, epoch))

    def step_update(self, num_updates: int, metric: float | None = None) -> None:
        """Called after an optimizer step: set the values for the next one."""
        self.metric = metric
        values = self.get_update_values(num_updates)
        if values is not None:
            self.update_groups(self._add_noise(values, num_updates))

    def update_groups(self, values: float | list[float]) -> None:
        """Write one value per group (a scalar goes to every group)."""
        if not isinstance(values, (list, tuple)):
            values = [values] * len(self.optimizer.param_groups)
        for group, value in zip(self.optimizer.param_groups, values, strict=False):
            group[self.param_group_field] = value

    def _add_noise(self, lrs: list[float], t: int) -> list[float]:
        """Multiply by (1 + noise) inside the noise range, noise drawn from a generator seeded by noise_seed + t."""
        if self.noise_range_t is None:
            return lrs
        if isinstance(self.noise_range_t, (list, tuple)):
            apply_noise = self.noise_range_t[0] <= t < self.noise_range_t[1]
        else:
            apply_noise = t >= self.noise_range_t
        if not apply_noise:
            return lrs
        g = torch.Generator()
        g.manual_seed(self.noise_seed + t)
        if self.noise_type == "normal":
            noise = torch.randn(1, generator=g).item()
            while abs(noise) >= self.noise_pct:  # resample until inside the limit
                noise = torch.randn(1, generator=g).item()
        else:
            noise = 2 * (torch.rand(1, generator=g).item() - 0.5) * self.noise_pct
        return [v + v * noise for v in lrs]


class CosineLRScheduler(Scheduler):
    """Cosine decay from the base lr to `lr_min` over `t_initial` steps, with warm-up, restarts (t_mul) and decay."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        t_initial: int,
        *,
        t_mul: float = 1.0,
        lr_min: float = 0.0,
        decay_rate: float = 1.0,
        warmup_t: int = 0,
        warmup_lr_init: float = 0,
        warmup_prefix: bool = False,
        cycle_limit: int = 0,
        t_in_epochs: bool = True,
        noise_range_t: Any = None,
        noise_pct: float = 0.67,
        noise_std: float = 1.0,
        noise_seed: int = 42,
        initialize: bool = True,
    ) -> None:
        super().__init__(
            optimizer,
            param_group_field="lr",
            noise_range_t=noise_range_t,
            noise_pct=noise_pct,
            noise_std=noise_std,
            noise_seed=noise_seed,
            initialize=initialize,
        )
        if t_initial <= 0 or lr_min < 0:
            raise KdReproError(f"cosine schedule needs epochs > 0 and --min-lr >= 0 (got {t_initial}, {lr_min})")
        if t_initial == 1 and t_mul == 1 and decay_rate == 1:
            logger.warning("Cosine annealing has no effect on the learning rate since t_initial = t_mul = eta_mul = 1.")
        self.t_initial = t_initial
        self.t_mul = t_mul
        self.lr_min = lr_min
        self.decay_rate = decay_rate
        self.cycle_limit = cycle_limit
        self.warmup_t = warmup_t
        self.warmup_lr_init = warmup_lr_init
        self.warmup_prefix = warmup_prefix
        self.t_in_epochs = t_in_epochs
        if self.warmup_t:
            self.warmup_steps = [(v - warmup_lr_init) / self.warmup_t for v in self.base_values]
            super().update_groups(self.warmup_lr_init)
        else:
            self.warmup_steps = [1 for _ in self.base_values]

    def _get_lr(self, t: int) -> list[float]:
        """The learning rates at step t."""
        if t < self.warmup_t:
            return [self.warmup_lr_init + t * s for s in self.warmup_steps]
        if self.warmup_prefix:
            t = t - self.warmup_t
        if self.t_mul != 1:
            i = math.floor(math.log(1 - t / self.t_initial * (1 - self.t_mul), self.t_mul))
            t_i = self.t_mul**i * self.t_initial
            t_curr = t - (1 - self.t_mul**i) / (1 - self.t_mul) * self.t_initial
        else:
            i = t // self.t_initial
            t_i = self.t_initial
            t_curr = t - (self.t_initial * i)
        gamma = self.decay_rate**i
        lr_min = self.lr_min * gamma
        if self.cycle_limit == 0 or (self.cycle_limit > 0 and i < self.cycle_limit):
            return [
                lr_min + 0.5 * (v * gamma - lr_min) * (1 + math.cos(math.pi * t_curr / t_i)) for v in self.base_values
            ]
        return [self.lr_min for _ in self.base_values]

    def get_epoch_values(self, epoch: int) -> list[float] | None:
        """lr(epoch) when the schedule counts epochs."""
        return self._get_lr(epoch) if self.t_in_epochs else None

    def get_update_values(self, num_updates: int) -> list[float] | None:
        """lr(num_updates) when the schedule counts updates."""
        return None if self.t_in_epochs else self._get_lr(num_updates)

    def get_cycle_length(self, cycles: int = 0) -> int:
        """Total steps of `cycles` cycles (default: cycle_limit, at least 1)."""
        cycles = max(1, cycles or self.cycle_limit)
        if self.t_mul == 1.0:
            return self.t_initial * cycles
        return math.floor(-self.t_initial * (self.t_mul**cycles - 1) / (1 - self.t_mul))


def create_scheduler(args: argparse.Namespace, optimizer: torch.optim.Optimizer) -> tuple[Any, int]:
    """`--sched warmupcos` (epoch-wise cosine to `--min-lr`, 1 cycle) or `step` (StepLR every `--lr_drop` epochs)."""
    num_epochs = args.epochs
    noise_range = None
    lr_noise = getattr(args, "lr_noise", None)
    if lr_noise is not None:
        if isinstance(lr_noise, (list, tuple)):
            noise_range = [n * num_epochs for n in lr_noise]
            if len(noise_range) == 1:
                noise_range = noise_range[0]
        else:
            noise_range = lr_noise * num_epochs
    if args.sched == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, args.lr_drop), num_epochs
    if args.sched == "warmupcos":
        scheduler = CosineLRScheduler(
            optimizer,
            t_initial=num_epochs,
            t_mul=getattr(args, "lr_cycle_mul", 1.0),
            lr_min=args.min_lr,
            decay_rate=args.decay_rate,
            warmup_lr_init=args.warmup_lr,
            warmup_t=args.warmup_epochs,
            cycle_limit=getattr(args, "lr_cycle_limit", 1),
            t_in_epochs=True,
            noise_range_t=noise_range,
            noise_pct=getattr(args, "lr_noise_pct", 0.67),
            noise_std=getattr(args, "lr_noise_std", 1.0),
            noise_seed=getattr(args, "seed", 42),
        )
        return scheduler, scheduler.get_cycle_length()
    raise KdReproError(f"--sched {args.sched!r} is not supported; use one of: {', '.join(SCHEDULES)}")
