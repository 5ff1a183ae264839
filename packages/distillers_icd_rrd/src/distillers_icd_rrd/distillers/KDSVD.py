# ruff: noqa: N999 (the original's module name is kept)
"""KD-SVD (Lee et al., ECCV 2018): RBF relations between aligned right singular vectors of consecutive maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._precision import float32_forward


class KDSVD(nn.Module):
    """Per layer i ≥ 1: Σ(rbf_s − rbf_t)² / B with rbf = exp(−(v_i − v_{i−1})²/8), k teacher vectors, k+3 student."""

    def __init__(self, k: int = 1) -> None:
        super().__init__()
        self.k = k

    @float32_forward
    def forward(self, g_s: Sequence[torch.Tensor], g_t: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """List of len(g_s) − 1 per-layer losses."""
        v_sb = None
        v_tb = None
        losses = []
        for i, (f_s, f_t) in enumerate(zip(g_s, g_t, strict=False)):
            _, s_t, v_t = self.svd(f_t, self.k)
            _, _, v_s = self.svd(f_s, self.k + 3)
            v_s, v_t = self.align_rsv(v_s, v_t)
            s_t = s_t.unsqueeze(1)
            v_t = v_t * s_t
            v_s = v_s * s_t

            if i > 0:
                s_rbf = torch.exp(-(v_s.unsqueeze(2) - v_sb.unsqueeze(1)).pow(2) / 8)
                t_rbf = torch.exp(-(v_t.unsqueeze(2) - v_tb.unsqueeze(1)).pow(2) / 8)
                l2loss = self.removenan((s_rbf - t_rbf.detach()).pow(2))
                losses.append(l2loss.sum())

            v_tb = v_t
            v_sb = v_s

        bsz = g_s[0].shape[0]
        return [loss / bsz for loss in losses]

    def svd(self, feat: torch.Tensor, n: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(U, S, V) of the (B, HW, C) map (V, not Vᴴ, as `torch.svd` returns), first n columns L2-normalised."""
        size = feat.shape
        assert len(size) == 4
        x = feat.view(-1, size[1], size[2] * size[2]).transpose(-2, -1)
        # torch.linalg.svd is what the deprecated torch.svd(some=True) calls; V = Vhᴴ
        u, s, vh = torch.linalg.svd(x, full_matrices=False)
        u = self.removenan(u)
        s = self.removenan(s)
        v = self.removenan(vh.mH)
        if n > 0:
            u = F.normalize(u[:, :, :n], dim=1)
            s = F.normalize(s[:, :n], dim=1)
            v = F.normalize(v[:, :, :n], dim=1)
        return u, s, v

    @staticmethod
    def removenan(x: torch.Tensor) -> torch.Tensor:
        """Replace non-finite entries by 0."""
        return torch.where(torch.isfinite(x), x, torch.zeros_like(x))

    @staticmethod
    def align_rsv(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep, per teacher vector, the sign-corrected student vector with maximal |cos|."""
        cosine = torch.matmul(a.transpose(-2, -1), b)
        max_abs_cosine, _ = torch.max(torch.abs(cosine), 1, keepdim=True)
        mask = torch.where(torch.eq(max_abs_cosine, torch.abs(cosine)), torch.sign(cosine), torch.zeros_like(cosine))
        return torch.matmul(a, mask), b
