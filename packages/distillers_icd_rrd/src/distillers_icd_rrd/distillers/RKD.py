# ruff: noqa: N999 (the original's module name is kept)
"""RKD (Park et al., CVPR 2019): distance-wise and angle-wise relational losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._precision import float32_forward


class RKDLoss(nn.Module):
    """L = w_d·smooth_l1(ψ_D(s), ψ_D(t)) + w_a·smooth_l1(ψ_A(s), ψ_A(t)); the teacher side is computed without grad."""

    def __init__(self, w_d: float = 25, w_a: float = 50) -> None:
        super().__init__()
        self.w_d = w_d
        self.w_a = w_a

    @float32_forward
    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """RKD loss on flattened student/teacher features."""
        student = f_s.view(f_s.shape[0], -1)
        teacher = f_t.view(f_t.shape[0], -1)

        with torch.no_grad():
            t_d = self.pdist(teacher, squared=False)
            t_d = t_d / t_d[t_d > 0].mean()
        d = self.pdist(student, squared=False)
        d = d / d[d > 0].mean()
        loss_d = F.smooth_l1_loss(d, t_d)

        with torch.no_grad():
            t_angle = self._angles(teacher)
        s_angle = self._angles(student)
        loss_a = F.smooth_l1_loss(s_angle, t_angle)

        return self.w_d * loss_d + self.w_a * loss_a

    @staticmethod
    def _angles(e: torch.Tensor) -> torch.Tensor:
        """Cosines ⟨x_j − x_i, x_k − x_i⟩ of normalised difference vectors, flattened to B³ entries."""
        diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)
        return torch.bmm(diff, diff.transpose(1, 2)).view(-1)

    @staticmethod
    def pdist(e: torch.Tensor, squared: bool = False, eps: float = 1e-12) -> torch.Tensor:
        """Pairwise Euclidean distances sqrt(clamp(‖a‖²+‖b‖²−2ab, eps)) with a zero diagonal."""
        e_square = e.pow(2).sum(dim=1)
        prod = e @ e.t()
        res = (e_square.unsqueeze(1) + e_square.unsqueeze(0) - 2 * prod).clamp(min=eps)
        if not squared:
            res = res.sqrt()
        res = res.clone()
        res[range(len(e)), range(len(e))] = 0
        return res
