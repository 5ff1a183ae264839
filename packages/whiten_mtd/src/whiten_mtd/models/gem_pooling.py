"""Generalized-mean (GeM) pooling with a fixed power, the pooling of the students and torchvision-based teachers."""

from __future__ import annotations

import torch
from torch import nn


class GeneralizedMeanPooling(nn.Module):
    """(mean_{h,w} clamp(x, 1e-6)^p)^(1/p) over the spatial axes -> (B, C); p == 1 is a plain mean (no clamp).

    `p` is a plain number (no state_dict entry), so `-p` on the command line overrides every model's power.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 1.0:
            return x.mean(dim=(2, 3))
        return x.clamp(min=1e-6).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
