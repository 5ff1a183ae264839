# ruff: noqa: N999 - the original module name, which config def_files name
"""The penultimate KD layer of letKD: BN-ReLU on the template scores, a cosine 1×1 back to C channels, added with α.

The student keeps this layer at inference: its classifier reads `x + α·value`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from letkd.distillation.architectures import tools


class Classifier(nn.Module):
    """A cosine 1×1 convolution `s_shape → t_shape` channels (the value mapping); its key prefix is `layers.`."""

    def __init__(self, s_shape: int, t_shape: int, scale: float, learn_scale: bool = True) -> None:
        super().__init__()
        self.classifier_type = "conv_cosine"
        self.num_channels = s_shape
        self.num_classes = t_shape
        self.layers = tools.Conv2dCos(s_shape, t_shape, bias=False, scale=scale, learn_scale=learn_scale)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class valueLayer(nn.Module):  # noqa: N801 - the original class name, which configs reach through create_model
    """x̂ = α·CosConv(ReLU(BN(scores))) + x; returns `(x̂, value)`."""

    def __init__(self, inp_size: int, emb_size: int = 4096, value_ratio: float = 1.0) -> None:
        super().__init__()
        self.conv_value = Classifier(emb_size, inp_size, scale=1, learn_scale=True)
        self.bn = nn.BatchNorm2d(emb_size)
        self.relu = nn.ReLU(inplace=True)
        self.value_ratio = value_ratio

    def forward(self, scores: torch.Tensor, stage_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        value = self.conv_value(self.relu(self.bn(scores)))
        return self.value_ratio * value + stage_out, value


def create_model(opt: dict[str, Any]) -> valueLayer:
    """Config keys: `emb_size` (K templates), `inp_size` (C student channels), optional `value_ratio` (α, default 1)."""
    return valueLayer(inp_size=opt["inp_size"], emb_size=opt["emb_size"], value_ratio=opt.get("value_ratio", 1.0))
