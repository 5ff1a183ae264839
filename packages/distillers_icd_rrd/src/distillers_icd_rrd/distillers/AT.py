# ruff: noqa: N999 (the original's module name is kept)
"""AT (Zagoruyko & Komodakis, ICLR 2017): match L2-normalised spatial attention maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._pool import pool_to_match


class Attention(nn.Module):
    """Per layer pair: mean((a(f_s) − a(f_t))²) with a(f) = normalize(mean_c f^p); returns one loss per layer."""

    def __init__(self, p: int = 2) -> None:
        super().__init__()
        self.p = p

    def forward(self, g_s: Sequence[torch.Tensor], g_t: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """List of per-layer attention losses (the caller sums them)."""
        return [self.at_loss(f_s, f_t) for f_s, f_t in zip(g_s, g_t, strict=False)]

    def at_loss(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """Attention loss of one pair after pooling to the smaller spatial size."""
        f_s, f_t = pool_to_match(f_s, f_t)
        return (self.at(f_s) - self.at(f_t)).pow(2).mean()

    def at(self, f: torch.Tensor) -> torch.Tensor:
        """Row-normalised channel mean of f^p, flattened over HW."""
        return F.normalize(f.pow(self.p).mean(1).view(f.size(0), -1))
