"""Linear and MLP probe heads of RepDistiller (`models/classifier.py`); unused by the training scripts."""

from __future__ import annotations

import torch
from torch import nn


class LinearClassifier(nn.Module):
    """A single `net` = Linear(dim_in, n_label) probe."""

    def __init__(self, dim_in: int, n_label: int = 10) -> None:
        super().__init__()
        self.net = nn.Linear(dim_in, n_label)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores."""
        return self.net(x)


class NonLinearClassifier(nn.Module):
    """Two-layer probe: Linear(dim_in, 200) → Dropout(p) → BN1d → ReLU → Linear(200, n_label), keys `net.0/2/4`."""

    def __init__(self, dim_in: int, n_label: int = 10, p: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim_in, 200),
            nn.Dropout(p=p),
            nn.BatchNorm1d(200),
            nn.ReLU(inplace=True),
            nn.Linear(200, n_label),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores."""
        return self.net(x)
