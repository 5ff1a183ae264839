# ruff: noqa: N999 (the original's module name is kept)
"""KD (Hinton et al., 2015): temperature-scaled KL between student and teacher logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._precision import float32_forward


class DistillKL(nn.Module):
    """L = T² · KL(p_t ‖ p_s) summed over classes and averaged over the batch, p = softmax(logits / T)."""

    def __init__(self, T: float) -> None:  # noqa: N803 (the original's argument name)
        super().__init__()
        self.T = T

    @float32_forward
    def forward(self, y_s: torch.Tensor, y_t: torch.Tensor) -> torch.Tensor:
        """KD loss on student logits y_s and teacher logits y_t."""
        p_s = F.log_softmax(y_s / self.T, dim=1)
        p_t = F.softmax(y_t / self.T, dim=1)
        # reduction="sum" is the original's deprecated `size_average=False` (same value)
        return F.kl_div(p_s, p_t, reduction="sum") * (self.T**2) / y_s.shape[0]
