# ruff: noqa: N999 - the original module name, which config def_files name
"""Hinton's temperature-scaled KL distillation loss (defined by the original, used by no letKD config)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class DistillKL(nn.Module):
    """KL(softmax(t/T) ‖ softmax(s/T)) summed over classes, times T², averaged over the batch."""

    def __init__(self, T: float) -> None:  # noqa: N803 - the original argument name
        super().__init__()
        self.T = T

    def forward(self, y_s: torch.Tensor, y_t: torch.Tensor) -> torch.Tensor:
        log_p_s = F.log_softmax(y_s / self.T, dim=1)
        p_t = F.softmax(y_t / self.T, dim=1)
        return F.kl_div(log_p_s, p_t, reduction="sum") * (self.T**2) / y_s.shape[0]


def create_criterion(opt: dict[str, Any]) -> DistillKL:
    """`opt['T']` is the temperature."""
    return DistillKL(opt["T"])
