# ruff: noqa: N999 (the original's module name is kept)
"""FT (Kim et al., NeurIPS 2018): L1 between normalised translator and paraphraser factors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._pool import pool_to_match


class FactorTransfer(nn.Module):
    """mean|F(f_s) − F(f_t)|^p2 (p2=1 → absolute value), F(f) = normalize(mean_c f^p1)."""

    def __init__(self, p1: int = 2, p2: int = 1) -> None:
        super().__init__()
        self.p1 = p1
        self.p2 = p2

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """Factor-transfer loss of the translated student factor f_s and the teacher factor f_t."""
        return self.factor_loss(f_s, f_t)

    def factor_loss(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """Loss after pooling to the smaller spatial size."""
        f_s, f_t = pool_to_match(f_s, f_t)
        diff = self.factor(f_s) - self.factor(f_t)
        if self.p2 == 1:
            return diff.abs().mean()
        return diff.pow(self.p2).mean()

    def factor(self, f: torch.Tensor) -> torch.Tensor:
        """Row-normalised channel mean of f^p1, flattened over HW."""
        return F.normalize(f.pow(self.p1).mean(1).view(f.size(0), -1))
