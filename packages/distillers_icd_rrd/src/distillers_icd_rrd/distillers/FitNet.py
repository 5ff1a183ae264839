# ruff: noqa: N999 (the original's module name is kept)
"""FitNet (Romero et al., ICLR 2015): MSE between the regressed student hint and the teacher hint."""

from __future__ import annotations

import torch
from torch import nn


class HintLoss(nn.Module):
    """Mean squared error over all elements (the ConvReg regressor is applied by the caller)."""

    def __init__(self) -> None:
        super().__init__()
        self.crit = nn.MSELoss()

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """MSE(f_s, f_t)."""
        return self.crit(f_s, f_t)
