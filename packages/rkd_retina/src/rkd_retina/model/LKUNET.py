# ruff: noqa: N999 (module name kept from the original `model/LKUNET.py`)
"""LKUNET (original `model/LKUNET.py`): SuperRetina with large-kernel encoder blocks, the model of `LKUNET.pth`.

Encoder stages 2–4 sum parallel 1×1/3×3/5×5 convolutions residually; one shared PReLU (`relu.weight`) activates
every encoder and descriptor-head layer, while the decoder keeps ReLU.
"""

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


class SuperRetina(RetinaKeypointModel):
    """LK variant of SuperRetina (51 state_dict keys); heads, outputs and losses as in `superRetina.SuperRetina`."""

    def __init__(self, config: Mapping[str, Any] | None = None, device: str | torch.device = "cpu", n_class: int = 1):
        super().__init__()
        self.relu = nn.PReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        c1, c2, c3, c4, c5, d1, d2 = 64, 64, 128, 128, 256, 256, 256
        self.conv1a = nn.Conv2d(1, c1, kernel_size=3, stride=1, padding=1)
        self.conv1b = nn.Conv2d(c1, c1, kernel_size=3, stride=1, padding=1)
        for stage, (c_in, c_out) in zip("234", ((c1, c2), (c2, c3), (c3, c4)), strict=True):
            setattr(self, f"conv{stage}", nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1))
            setattr(self, f"conv{stage}a", nn.Conv2d(c_out, c_out, kernel_size=1, stride=1, padding=0))
            setattr(self, f"conv{stage}b", nn.Conv2d(c_out, c_out, kernel_size=3, stride=1, padding=1))
            setattr(self, f"conv{stage}c", nn.Conv2d(c_out, c_out, kernel_size=5, stride=1, padding=2))
        add_heads(self, c4, c5, d1, d2)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.dconv_up3 = double_conv(c3 + c4, c3)
        self.dconv_up2 = double_conv(c2 + c3, c2)
        self.dconv_up1 = double_conv(c1 + c2, c1)
        self.conv_last = nn.Conv2d(c1, n_class, kernel_size=1)
        self.init_training(config, device)
        self.to(device)

    def lk_block(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        """`y = PReLU(conv_s(x))`; return `PReLU(y + conv_sa(y) + conv_sb(y) + conv_sc(y))`."""
        y = self.relu(getattr(self, f"conv{stage}")(x))
        y = (
            y
            + getattr(self, f"conv{stage}a")(y)
            + getattr(self, f"conv{stage}b")(y)
            + getattr(self, f"conv{stage}c")(y)
        )
        return self.relu(y)

    def network(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (sigmoid detector map B×1×H×W, descriptor map B×256×h×w)."""
        x = self.relu(self.conv1a(x))
        conv1 = self.relu(self.conv1b(x))
        conv2 = self.lk_block(self.pool(conv1), "2")
        conv3 = self.lk_block(self.pool(conv2), "3")
        x = self.lk_block(self.pool(conv3), "4")
        desc = descriptor_head(self, x, self.relu)
        semi = detector_head(self, x, conv1, conv2, conv3)
        return semi, desc
