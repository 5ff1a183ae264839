# ruff: noqa: N999 (module name kept from the original `model/LKUNET_attention.py`)
"""LKUNET with attention-gated skips (original `model/LKUNET_attention.py`); no original script trains or loads it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rkd_retina.model.superRetina import (
    RetinaKeypointModel,
    add_heads,
    descriptor_head,
    detector_head,
    double_conv,
)


class LkAttentionBlock(nn.Module):
    """LK encoder block; with `attention`, returns (pooled output, skip gated by a 1-channel attention map)."""

    def __init__(self, inchannels: int, outchannels: int, device: str | torch.device = "cpu", attention: bool = True):
        super().__init__()
        self.sigmoid = nn.Sigmoid()
        self.bi_upsample = nn.Upsample(scale_factor=2, mode="bilinear")
        self.conv = nn.Conv2d(inchannels, outchannels, kernel_size=3, stride=1, padding=1)
        self.small_filter = nn.Conv2d(outchannels, outchannels, kernel_size=1, stride=1, padding=0)
        self.regular_filter = nn.Conv2d(outchannels, outchannels, kernel_size=3, stride=1, padding=1)
        self.large_filter = nn.Conv2d(outchannels, outchannels, kernel_size=5, stride=1, padding=2)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.attention_g = nn.Conv2d(outchannels, outchannels, kernel_size=3, stride=1, padding=1)
        self.attention_x = nn.Conv2d(outchannels, outchannels, kernel_size=3, stride=2, padding=1)
        self.collapse = nn.Conv2d(outchannels, 1, kernel_size=1, stride=1, padding=0)
        self.attention_flag = attention
        self.to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """LK sum with ReLU; with attention, the pooled path is not gated, only the returned skip is."""
        relu = nn.ReLU(inplace=True)
        x = relu(self.conv(x))
        x = x + self.small_filter(x) + self.regular_filter(x) + self.large_filter(x)
        if not self.attention_flag:
            return relu(x)
        conv = relu(x)
        pooled = self.pool(conv)
        gate = self.sigmoid(self.collapse(relu(self.attention_g(pooled) + self.attention_x(conv))))
        return pooled, conv * self.bi_upsample(gate)


class SuperRetina(RetinaKeypointModel):
    """LK + attention encoder with SuperRetina heads (80 keys, incl. the unused `trans_conv_2`)."""

    def __init__(self, config: Mapping[str, Any] | None = None, device: str | torch.device = "cpu", n_class: int = 1):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        c1, c2, c3, c4, c5, d1, d2 = 64, 64, 128, 128, 256, 256, 256
        self.lkencoder_1 = LkAttentionBlock(1, c1, device)
        self.lkencoder_2 = LkAttentionBlock(c1, c2, device)
        self.lkencoder_3 = LkAttentionBlock(c2, c3, device)
        self.lkencoder_4 = LkAttentionBlock(c3, c4, device, attention=False)
        add_heads(self, c4, c5, d1, d2)
        self.trans_conv_2 = nn.ConvTranspose2d(d2, d2, 2, stride=2)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.dconv_up3 = double_conv(c3 + c4, c3)
        self.dconv_up2 = double_conv(c2 + c3, c2)
        self.dconv_up1 = double_conv(c1 + c2, c1)
        self.conv_last = nn.Conv2d(c1, n_class, kernel_size=1)
        self.init_training(config, device)
        self.to(device)

    def network(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (sigmoid detector map B×1×H×W, descriptor map B×256×h×w)."""
        x, conv1 = self.lkencoder_1(x)
        x, conv2 = self.lkencoder_2(x)
        x, conv3 = self.lkencoder_3(x)
        x = self.lkencoder_4(x)
        desc = descriptor_head(self, x, nn.ReLU(inplace=True))
        semi = detector_head(self, x, conv1, conv2, conv3)
        return semi, desc
