# ruff: noqa: N999 (the original's module name is kept)
"""CC (Peng et al., ICCV 2019), in the form the CC authors shared with RepDistiller."""

from __future__ import annotations

import torch
from torch import nn

from ._precision import float32_forward


class Correlation(nn.Module):
    """δ = |e_s − e_t|; L = mean_i Σ_d δ_{i,d}·δ_{i+1,d} over consecutive batch rows (heads applied by the caller)."""

    @float32_forward
    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """Correlation-congruence loss on embedded features."""
        delta = torch.abs(f_s - f_t)
        return torch.mean((delta[:-1] * delta[1:]).sum(1))
