# ruff: noqa: N999 (the original's module name is kept)
"""VID (Ahn et al., CVPR 2019): Gaussian likelihood of the teacher map under a regressed mean and a learned variance."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._pool import pool_to_match


def _conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    """Bias-free 1×1 convolution."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, padding=0, bias=False, stride=1)


class VIDLoss(nn.Module):
    """mean(½((μ(f_s) − f_t)²/σ² + log σ²)), σ² = softplus(log_scale) + eps.

    State keys `regressor.{0,2,4}.weight` and `log_scale`.
    """

    def __init__(
        self,
        num_input_channels: int,
        num_mid_channel: int,
        num_target_channels: int,
        init_pred_var: float = 5.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.regressor = nn.Sequential(
            _conv1x1(num_input_channels, num_mid_channel),
            nn.ReLU(),
            _conv1x1(num_mid_channel, num_mid_channel),
            nn.ReLU(),
            _conv1x1(num_mid_channel, num_target_channels),
        )
        # inverse softplus of (init_pred_var − eps) in float64 (numpy), rounded once to float32, as in the original
        self.log_scale = nn.Parameter(
            torch.full((num_target_channels,), float(np.log(np.exp(init_pred_var - eps) - 1.0)))
        )
        self.eps = eps

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of one layer pair after pooling to the smaller spatial size."""
        input, target = pool_to_match(input, target)
        pred_mean = self.regressor(input)
        pred_var = torch.log(1.0 + torch.exp(self.log_scale)) + self.eps
        pred_var = pred_var.view(1, -1, 1, 1)
        neg_log_prob = 0.5 * ((pred_mean - target) ** 2 / pred_var + torch.log(pred_var))
        return torch.mean(neg_log_prob)
