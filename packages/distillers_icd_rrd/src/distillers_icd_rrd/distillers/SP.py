# ruff: noqa: N999 (the original's module name is kept)
"""SP (Tung & Mori, ICCV 2019): match row-normalised batch similarity (Gram) matrices."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._precision import float32_forward


class Similarity(nn.Module):
    """Per layer: Σ(G_t − G_s)² / B², G = normalize_rows(F Fᵀ); each loss has shape (1,)."""

    @float32_forward
    def forward(self, g_s: Sequence[torch.Tensor], g_t: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """List of per-layer similarity-preserving losses."""
        return [self.similarity_loss(f_s, f_t) for f_s, f_t in zip(g_s, g_t, strict=False)]

    def similarity_loss(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """SP loss of one pair."""
        bsz = f_s.shape[0]
        f_s = f_s.view(bsz, -1)
        f_t = f_t.view(bsz, -1)
        g_s = F.normalize(torch.mm(f_s, torch.t(f_s)))
        g_t = F.normalize(torch.mm(f_t, torch.t(f_t)))
        g_diff = g_t - g_s
        return (g_diff * g_diff).view(-1, 1).sum(0) / (bsz * bsz)
