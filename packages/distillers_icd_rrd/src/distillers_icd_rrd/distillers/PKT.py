# ruff: noqa: N999 (the original's module name is kept)
"""PKT (Passalis & Tefas, ECCV 2018): KL between cosine-kernel conditional distributions."""

from __future__ import annotations

import torch
from torch import nn


def _unit_rows(x: torch.Tensor, eps: float) -> torch.Tensor:
    """x / (‖x‖ + eps) per row, with NaNs set to 0 (in place on the result)."""
    x = x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + eps)
    x[torch.isnan(x)] = 0
    return x


def _conditional(x: torch.Tensor) -> torch.Tensor:
    """Row-normalised (cos + 1)/2 kernel matrix."""
    sim = (torch.mm(x, x.transpose(0, 1)) + 1.0) / 2.0
    return sim / torch.sum(sim, dim=1, keepdim=True)


class PKT(nn.Module):
    """L = mean over B² entries of P_t · log((P_t + eps)/(P_s + eps)), eps = 1e-7."""

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """PKT loss on (B, d) features."""
        return self.cosine_similarity_loss(f_s, f_t)

    @staticmethod
    def cosine_similarity_loss(output_net: torch.Tensor, target_net: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
        """The original PKT objective between the student (output) and teacher (target) features."""
        model_similarity = _conditional(_unit_rows(output_net, eps))
        target_similarity = _conditional(_unit_rows(target_net, eps))
        return torch.mean(target_similarity * torch.log((target_similarity + eps) / (model_similarity + eps)))
