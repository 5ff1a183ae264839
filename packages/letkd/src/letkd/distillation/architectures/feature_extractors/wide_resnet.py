"""`feature_extractors.wide_resnet`: RepDistiller's pre-activation Wide ResNet (wrn_16_2, wrn_40_1, wrn_40_2, …).

Options beyond RepDistiller: `pool` ('avg' or 'max' adds `gpool` + `reshape` before `fc`; anything else leaves
them out) and `downscale` (`avgpool_2x2` after the final BN-ReLU, the cross-architecture extraction point).
The block outputs are pre-activation; the final `bn1`/`relu` follow `block3`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kdrepro_shared.errors import KdReproError
from letkd.distillation.architectures import tools


class BasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3×3-BN-ReLU-[dropout]-conv3×3 plus an identity or 1×1 shortcut.

    When the width changes, the BN-ReLU'd input feeds both the convolutions and the 1×1 `convShortcut`;
    otherwise the identity shortcut carries the raw input.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.droprate = drop_rate
        self.equalInOut = in_planes == out_planes
        self.convShortcut = (
            None
            if self.equalInOut
            else nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output (before any activation)."""
        activated = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(activated)))
        if self.droprate > 0:
            out = F.dropout(out, p=self.droprate, training=self.training)
        out = self.conv2(out)
        shortcut = x if self.convShortcut is None else self.convShortcut(activated)
        return torch.add(shortcut, out)


class NetworkBlock(nn.Module):
    """A stage of `nb_layers` blocks in `self.layer`; only the first one changes width and stride."""

    def __init__(
        self,
        nb_layers: int,
        in_planes: int,
        out_planes: int,
        block: type[BasicBlock],
        *,
        stride: int,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *(
                block(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, drop_rate)
                for i in range(nb_layers)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the stage."""
        return self.layer(x)


class WideResnet(nn.Module):
    """WRN-depth-k for CIFAR: conv3×3, three NetworkBlocks (16k/32k/64k, strides 1/2/2), BN-ReLU, pooling, fc."""

    def __init__(
        self,
        depth: int,
        num_classes: int,
        *,
        widen_factor: int = 1,
        drop_rate: float = 0.0,
        pool: str = "avg",
        downscale: bool = False,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise KdReproError(f"wide_resnet depth must be 6n+4 (e.g. 16, 40), got {depth}")
        self.downscale = downscale
        self.pool = pool
        channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, channels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, channels[0], channels[1], BasicBlock, stride=1, drop_rate=drop_rate)
        self.block2 = NetworkBlock(n, channels[1], channels[2], BasicBlock, stride=2, drop_rate=drop_rate)
        self.block3 = NetworkBlock(n, channels[2], channels[3], BasicBlock, stride=2, drop_rate=drop_rate)
        self.bn1 = nn.BatchNorm2d(channels[3])
        self.relu = nn.ReLU(inplace=True)
        if downscale:
            self.avgpool_2x2 = nn.AvgPool2d((2, 2), stride=(2, 2))
        if pool in tools.POOL_TYPES:
            self.gpool = tools.GlobalPooling(pool_type=pool)
            self.reshape = tools.Reshape(-1, channels[3])
        self.fc = nn.Linear(channels[3], num_classes)
        self.nChannels = channels[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: the children in order, i.e. what `split_network`'s extractor and classifier compute in turn."""
        for module in self.children():
            x = module(x)
        return x


def create_model(opt: dict[str, Any]) -> WideResnet:
    """Factory entry point: `depth`, `num_classes`, `widen_Factor` (sic), optional `dropRate`, `pool`, `downscale`."""
    return WideResnet(
        depth=opt["depth"],
        num_classes=opt["num_classes"],
        widen_factor=opt["widen_Factor"],
        drop_rate=opt.get("dropRate", 0.0),
        pool=opt.get("pool", "avg"),
        downscale=opt.get("downscale", False),
    )
