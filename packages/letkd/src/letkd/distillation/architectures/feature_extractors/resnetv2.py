"""`feature_extractors.resnetv2`: RepDistiller's CIFAR ResNet-18/34/50/101/152 (64-channel 3×3 stem), plus `downscale`.

`num_filters` holds the block counts per stage (e.g. [3, 4, 6, 3]); depth < 50 selects BasicBlock, otherwise
Bottleneck. `downscale=True` adds `avgpool_2x2` after `layer4`, the extraction point of the RN50 teacher.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from letkd.distillation.architectures.tools import Reshape


def _projection(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    """The shortcut: empty (identity) unless the stride or width changes, then 1×1 conv + BN."""
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN plus shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _projection(in_planes, self.expansion * planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output (post-ReLU)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1-BN-ReLU, 3×3(stride)-BN-ReLU, 1×1(×4)-BN plus shortcut, then ReLU."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, self.expansion * planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(self.expansion * planes)
        self.shortcut = _projection(in_planes, self.expansion * planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output (post-ReLU)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem conv3×3(3→64)-BN-ReLU, four stages (64/128/256/512 planes, strides 1/2/2/2), [2×2 pool], pool, linear."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        num_blocks: list[int],
        num_classes: int = 10,
        downscale: bool = False,
    ) -> None:
        super().__init__()
        self.downscale = downscale
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu1 = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        if downscale:
            self.avgpool_2x2 = nn.AvgPool2d((2, 2), stride=(2, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.reshape = Reshape(-1, 512 * block.expansion)
        self.linear = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(
        self, block: type[BasicBlock | Bottleneck], planes: int, num_blocks: int, stride: int
    ) -> nn.Sequential:
        """One stage: the first block takes the stride, the others keep the resolution."""
        layers = []
        for block_stride in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, block_stride))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: the children in order (the original's own forward unpacked tuples its blocks never return)."""
        for module in self.children():
            x = module(x)
        return x


def create_model(opt: dict[str, Any]) -> ResNet:
    """Factory entry point: `depth` (< 50: BasicBlock, else Bottleneck), `num_filters` (block counts), `num_classes`."""
    block = BasicBlock if opt["depth"] < 50 else Bottleneck
    return ResNet(
        block, num_blocks=opt["num_filters"], num_classes=opt["num_classes"], downscale=opt.get("downscale", False)
    )
