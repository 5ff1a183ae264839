# ruff: noqa: N999 (the original's module name is kept)
"""NST (Huang & Wang, 2017): MMD with a degree-2 polynomial kernel between channel-wise normalised maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._pool import pool_to_match


class NSTLoss(nn.Module):
    """Per layer: mean K(t,t) (detached) + mean K(s,s) − 2·mean K(s,t) (the original's `full_loss=True`)."""

    def forward(self, g_s: Sequence[torch.Tensor], g_t: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """List of per-layer NST losses."""
        return [self.nst_loss(f_s, f_t) for f_s, f_t in zip(g_s, g_t, strict=False)]

    def nst_loss(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """Squared MMD of one pair after pooling and L2-normalising every channel over HW."""
        f_s, f_t = pool_to_match(f_s, f_t)
        f_s = F.normalize(f_s.view(f_s.shape[0], f_s.shape[1], -1), dim=2)
        f_t = F.normalize(f_t.view(f_t.shape[0], f_t.shape[1], -1), dim=2)
        return (
            self.poly_kernel(f_t, f_t).mean().detach()
            + self.poly_kernel(f_s, f_s).mean()
            - 2 * self.poly_kernel(f_s, f_t).mean()
        )

    def poly_kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """K[n, j, i] = (⟨b_j, a_i⟩)²."""
        return (a.unsqueeze(1) * b.unsqueeze(2)).sum(-1).pow(2)
