# ruff: noqa: N999 (the original's module name is kept)
"""FSP (Yim et al., CVPR 2017): match flow-of-solution-procedure matrices between consecutive maps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._precision import float32_forward


class FSP(nn.Module):
    """Per consecutive pair k: mean((G_s − G_t)²), G = mean_HW(top_c · bot_c′); needs equal per-layer channels."""

    def __init__(self, s_shapes: Sequence[Sequence[int]], t_shapes: Sequence[Sequence[int]]) -> None:
        super().__init__()
        assert len(s_shapes) == len(t_shapes), "unequal length of feat list"
        s_c = [s[1] for s in s_shapes]
        t_c = [t[1] for t in t_shapes]
        if np.any(np.asarray(s_c) != np.asarray(t_c)):
            raise ValueError("num of channels not equal (error in FSP)")

    @float32_forward
    def forward(self, g_s: Sequence[torch.Tensor], g_t: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """List of per-pair FSP losses."""
        s_fsp = self.compute_fsp(g_s)
        t_fsp = self.compute_fsp(g_t)
        return [self.compute_loss(s, t) for s, t in zip(s_fsp, t_fsp, strict=False)]

    @staticmethod
    def compute_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean squared difference of two FSP matrices."""
        return (s - t).pow(2).mean()

    @staticmethod
    def compute_fsp(g: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """FSP matrices (B, C_top, C_bot) of consecutive maps, pooling the larger one to the smaller size."""
        fsp_list = []
        for i in range(len(g) - 1):
            bot, top = g[i], g[i + 1]
            b_h, t_h = bot.shape[2], top.shape[2]
            if b_h > t_h:
                bot = F.adaptive_avg_pool2d(bot, (t_h, t_h))
            elif b_h < t_h:
                top = F.adaptive_avg_pool2d(top, (b_h, b_h))
            bot = bot.unsqueeze(1)
            top = top.unsqueeze(2)
            bot = bot.view(bot.shape[0], bot.shape[1], bot.shape[2], -1)
            top = top.view(top.shape[0], top.shape[1], top.shape[2], -1)
            fsp_list.append((bot * top).mean(-1))
        return fsp_list
