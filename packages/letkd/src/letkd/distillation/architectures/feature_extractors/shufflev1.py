"""`feature_extractors.shufflev1`: RepDistiller's ShuffleNet V1 for CIFAR (out 240/480/960, 4/8/4 blocks, groups 3)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from letkd.distillation.architectures.tools import Reshape


class ShuffleBlock(nn.Module):
    """Channel shuffle: view (N, g, C/g, H, W), swap the two channel axes, flatten back."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Interleave the channels of the `groups` groups."""
        n, c, h, w = x.size()
        return x.view(n, self.groups, c // self.groups, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


class Bottleneck(nn.Module):
    """Grouped 1×1-BN-ReLU, shuffle, depthwise 3×3-BN-ReLU, grouped 1×1-BN; stride 2 concatenates an avg-pooled input.

    The first 1×1 is ungrouped when the input is the 24-channel stem; the block ends with a ReLU.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int) -> None:
        super().__init__()
        self.stride = stride
        mid_planes = int(out_planes / 4)
        first_groups = 1 if in_planes == 24 else groups
        self.conv1 = nn.Conv2d(in_planes, mid_planes, kernel_size=1, groups=first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_planes)
        self.shuffle1 = ShuffleBlock(groups=first_groups)
        self.conv2 = nn.Conv2d(
            mid_planes, mid_planes, kernel_size=3, stride=stride, padding=1, groups=mid_planes, bias=False
        )
        self.bn2 = nn.BatchNorm2d(mid_planes)
        self.conv3 = nn.Conv2d(mid_planes, out_planes, kernel_size=1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1)) if stride == 2 else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output (post-ReLU)."""
        out = self.shuffle1(F.relu(self.bn1(self.conv1(x))))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        res = self.shortcut(x)
        return F.relu(torch.cat([out, res], 1) if self.stride == 2 else out + res)


class ShuffleNet(nn.Module):
    """1×1 stem (3→24)-BN-ReLU, three stages whose first block halves the resolution, 4×4 pool, linear."""

    def __init__(self, cfg: dict[str, Any], num_classes: int = 10) -> None:
        super().__init__()
        out_planes, num_blocks, groups = cfg["out_planes"], cfg["num_blocks"], cfg["groups"]
        self.conv1 = nn.Conv2d(3, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.relu1 = nn.ReLU(inplace=True)
        self.in_planes = 24
        self.layer1 = self._make_layer(out_planes[0], num_blocks[0], groups)
        self.layer2 = self._make_layer(out_planes[1], num_blocks[1], groups)
        self.layer3 = self._make_layer(out_planes[2], num_blocks[2], groups)
        self.avgpool = nn.AvgPool2d((4, 4))
        self.reshape = Reshape(-1, out_planes[2])
        self.linear = nn.Linear(out_planes[2], num_classes)

    def _make_layer(self, out_planes: int, num_blocks: int, groups: int) -> nn.Sequential:
        """One stage; the strided first block computes only the channels the pooled input does not supply."""
        layers = []
        for i in range(num_blocks):
            concatenated = self.in_planes if i == 0 else 0
            layers.append(
                Bottleneck(self.in_planes, out_planes - concatenated, stride=2 if i == 0 else 1, groups=groups)
            )
            self.in_planes = out_planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: the children in order (the original's own forward unpacked tuples its blocks never return)."""
        for module in self.children():
            x = module(x)
        return x


def ShuffleV1(**kwargs: Any) -> ShuffleNet:  # noqa: N802 - RepDistiller's constructor name
    """The ShuffleNet V1 configuration RepDistiller and letKD use."""
    return ShuffleNet({"out_planes": [240, 480, 960], "num_blocks": [4, 8, 4], "groups": 3}, **kwargs)


def create_model(opt: dict[str, Any]) -> ShuffleNet:
    """Factory entry point: `num_classes`."""
    return ShuffleV1(num_classes=opt["num_classes"])
