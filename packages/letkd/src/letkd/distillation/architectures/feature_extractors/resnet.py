"""`feature_extractors.resnet`: RepDistiller's CIFAR ResNet (resnet8…110, resnet8x4, resnet32x4), plus `downscale`.

Attribute names follow RepDistiller, so its `<arch>_vanilla/ckpt_epoch_240.pth` teachers load with strict keys.
`downscale=True` adds `avgpool_2x2` after `layer3`: the extraction point of the cross-architecture teachers, whose
4×4 map then matches the students' (the full model's own 8×8 average pool no longer fits, as in the original).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kdrepro_shared.errors import KdReproError
from letkd.distillation.architectures.tools import Reshape


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution, padding 1, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN plus the (projected) input, then ReLU."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block output (post-ReLU)."""
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet(nn.Module):
    """CIFAR ResNet of depth 6n+2: stem, three stages of n BasicBlocks (strides 1/2/2), [2×2 pool], 8×8 pool, fc."""

    def __init__(self, depth: int, num_filters: list[int], num_classes: int = 10, downscale: bool = False) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise KdReproError(f"resnet depth must be 6n+2 (e.g. 8, 20, 32, 56, 110), got {depth}")
        if len(num_filters) != 4:
            raise KdReproError(f"resnet num_filters must list 4 widths (stem, stage 1-3), got {num_filters}")
        blocks_per_stage = (depth - 2) // 6
        self.downscale = downscale
        self.inplanes = num_filters[0]
        self.conv1 = nn.Conv2d(3, num_filters[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(num_filters[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(num_filters[1], blocks_per_stage)
        self.layer2 = self._make_layer(num_filters[2], blocks_per_stage, stride=2)
        self.layer3 = self._make_layer(num_filters[3], blocks_per_stage, stride=2)
        if downscale:
            self.avgpool_2x2 = nn.AvgPool2d((2, 2), stride=(2, 2))
        self.avgpool = nn.AvgPool2d(8)
        self.reshape = Reshape(-1, num_filters[3])
        self.fc = nn.Linear(num_filters[3] * BasicBlock.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        """One stage; the projection shortcut is built before its block, which fixes the initialisation order."""
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * BasicBlock.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * BasicBlock.expansion),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * BasicBlock.expansion
        layers += [BasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: the children in order, i.e. what `split_network`'s extractor and classifier compute in turn."""
        for module in self.children():
            x = module(x)
        return x


def create_model(opt: dict[str, Any]) -> ResNet:
    """Factory entry point: `depth`, `num_filters`, `num_classes`, optional `downscale` (default False).

    The original's `preact` option makes every block return a tuple that the next block cannot take, so it is
    refused here instead of failing at the first forward.
    """
    if opt.get("preact", False):
        raise KdReproError("resnet option preact=True is broken in the original (blocks return tuples); use False")
    return ResNet(
        depth=opt["depth"],
        num_filters=opt["num_filters"],
        num_classes=opt["num_classes"],
        downscale=opt.get("downscale", False),
    )
