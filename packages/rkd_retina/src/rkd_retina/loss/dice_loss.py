"""Dice losses of the original `loss/dice_loss.py`; `DiceLoss` drives every detector term of SuperRetina and RKD."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DiceBCELoss(nn.Module):
    """Dice (smooth 1, plain sums) plus 0.01 × BCE on probabilities; unused by the original's training."""

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, smooth: float = 1) -> torch.Tensor:
        """Return `0.01·BCE + 1 − (2·Σpt + smooth) / (Σp + Σt + smooth)` over the whole batch."""
        inputs = inputs.view(-1)
        targets = targets.view(-1)
        intersection = (inputs * targets).sum()
        dice_loss = 1 - (2.0 * intersection + smooth) / (inputs.sum() + targets.sum() + smooth)
        bce = F.binary_cross_entropy(inputs, targets, reduction="mean")
        return 0.01 * bce + dice_loss


class DiceLoss(nn.Module):
    """Dice loss `1 − (2·Σpt + s) / (Σp^p + Σt^p + s)` over the flattened batch (smooth 1e-3, p = 2)."""

    def __init__(self, smooth: float = 1e-3, p: int = 2, reduction: str = "mean") -> None:
        super().__init__()
        self.smooth = smooth
        self.p = p
        self.reduction = reduction

    def forward(self, predict: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the Dice loss of `predict` against `target` (same batch size; symmetric in the two)."""
        assert predict.shape[0] == target.shape[0], "predict & target batch size don't match"
        predict = predict.contiguous().view(-1)
        target = target.contiguous().view(-1)
        num = 2 * torch.sum(torch.mul(predict, target), dim=0) + self.smooth
        den = torch.sum(predict.pow(self.p) + target.pow(self.p), dim=0) + self.smooth
        loss = 1 - num / den
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        if self.reduction == "none":
            return loss
        raise ValueError(f"Unexpected reduction {self.reduction}")
