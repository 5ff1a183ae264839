# ruff: noqa: N999 (the original's module name is kept)
"""AB (Heo et al., AAAI 2019): activation-boundary transfer with a margin on pre-activations."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ABLoss(nn.Module):
    """Per layer i: w_i · Σ|alternative L2| / B · 3/1000, w_i = 2^(i−n+1); returns one loss per layer."""

    def __init__(self, feat_num: int, margin: float = 1.0) -> None:
        super().__init__()
        self.w = [2 ** (i - feat_num + 1) for i in range(feat_num)]
        self.margin = margin

    def forward(self, g_s: Sequence[torch.Tensor], g_t: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Weighted per-layer losses on (connected) student and teacher pre-activations."""
        bsz = g_s[0].shape[0]
        losses = [self.criterion_alternative_l2(s, t) for s, t in zip(g_s, g_t, strict=False)]
        return [w * loss / bsz / 1000 * 3 for w, loss in zip(self.w, losses, strict=False)]

    def criterion_alternative_l2(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Σ (s+m)²·[s > −m ∧ t ≤ 0] + (s−m)²·[s ≤ m ∧ t > 0]."""
        m = self.margin
        loss = (source + m) ** 2 * ((source > -m) & (target <= 0)).float() + (source - m) ** 2 * (
            (source <= m) & (target > 0)
        ).float()
        return torch.abs(loss).sum()
