# ruff: noqa: N999 (module name kept from the original `models/ShuffleNetv1.py`)
"""ShuffleNetV1 of RepDistiller (`models/ShuffleNetv1.py`); `ShuffleV1` = groups 3, widths 240/480/960, blocks 4/8/4.

The first block of each stage has stride 2 and concatenates an average-pooled shortcut; every stage's last block also
returns the pre-ReLU tensor for `preact=True`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kdrepro_shared.errors import KdReproError


class ShuffleBlock(nn.Module):
    """Channel shuffle: [N,C,H,W] → [N,g,C/g,H,W] → [N,C/g,g,H,W] → [N,C,H,W]."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Interleave the channels of the `groups` groups."""
        n, c, h, w = x.size()
        g = self.groups
        return x.view(n, g, c // g, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


class Bottleneck(nn.Module):
    """Grouped 1×1 → shuffle → depthwise 3×3 → grouped 1×1; add (stride 1) or concat a pooled shortcut (stride 2)."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int, is_last: bool = False) -> None:
        super().__init__()
        self.is_last = is_last
        self.stride = stride
        mid_planes = int(out_planes / 4)
        g = 1 if in_planes == 24 else groups
        self.conv1 = nn.Conv2d(in_planes, mid_planes, kernel_size=1, groups=g, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_planes)
        self.shuffle1 = ShuffleBlock(groups=g)
        self.conv2 = nn.Conv2d(
            mid_planes, mid_planes, kernel_size=3, stride=stride, padding=1, groups=mid_planes, bias=False
        )
        self.bn2 = nn.BatchNorm2d(mid_planes)
        self.conv3 = nn.Conv2d(mid_planes, out_planes, kernel_size=1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1)) if stride == 2 else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Unit output, or `(relu(preact), preact)` when last in its stage."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.shuffle1(out)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        res = self.shortcut(x)
        preact = torch.cat([out, res], 1) if self.stride == 2 else out + res
        out = F.relu(preact)
        return (out, preact) if self.is_last else out


class ShuffleNet(nn.Module):
    """CIFAR ShuffleNetV1: 1×1 stem to 24 channels, three stages, 4×4 average pool and a `linear` classifier."""

    def __init__(self, cfg: dict[str, Any], num_classes: int = 10) -> None:
        super().__init__()
        out_planes, num_blocks, groups = cfg["out_planes"], cfg["num_blocks"], cfg["groups"]
        self.conv1 = nn.Conv2d(3, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.in_planes = 24
        self.layer1 = self._make_layer(out_planes[0], num_blocks[0], groups)
        self.layer2 = self._make_layer(out_planes[1], num_blocks[1], groups)
        self.layer3 = self._make_layer(out_planes[2], num_blocks[2], groups)
        self.linear = nn.Linear(out_planes[2], num_classes)

    def _make_layer(self, out_planes: int, num_blocks: int, groups: int) -> nn.Sequential:
        """One stage; block 0 (stride 2) produces `out_planes - in_planes` channels to leave room for the concat."""
        layers = []
        for i in range(num_blocks):
            cat_planes = self.in_planes if i == 0 else 0
            layers.append(
                Bottleneck(
                    self.in_planes,
                    out_planes - cat_planes,
                    stride=2 if i == 0 else 1,
                    groups=groups,
                    is_last=(i == num_blocks - 1),
                )
            )
            self.in_planes = out_planes
        return nn.Sequential(*layers)

    def get_feat_modules(self) -> nn.ModuleList:
        """Modules producing the hooked features."""
        return nn.ModuleList([self.conv1, self.bn1, self.layer1, self.layer2, self.layer3])

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        """ShuffleNetV1 has no BN-before-ReLU list, as in the original: a method that needs one cannot use it."""
        raise KdReproError('ShuffleV1 cannot be an "Overhaul"-style teacher: it has no BN-before-ReLU layer list')

    def forward(
        self, x: torch.Tensor, is_feat: bool = False, preact: bool = False
    ) -> torch.Tensor | tuple[list[torch.Tensor], torch.Tensor]:
        """Logits, or `([f0, f1, f2, f3, f4], logits)` (stage outputs pre-ReLU if `preact`)."""
        out = F.relu(self.bn1(self.conv1(x)))
        f0 = out
        out, f1_pre = self.layer1(out)
        f1 = out
        out, f2_pre = self.layer2(out)
        f2 = out
        out, f3_pre = self.layer3(out)
        f3 = out
        out = F.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        f4 = out
        out = self.linear(out)
        if not is_feat:
            return out
        if preact:
            return [f0, f1_pre, f2_pre, f3_pre, f4], out
        return [f0, f1, f2, f3, f4], out


def ShuffleV1(num_classes: int = 10) -> ShuffleNet:  # noqa: N802 (the original's public name)
    """ShuffleNetV1 with groups 3, out_planes [240, 480, 960], blocks [4, 8, 4]."""
    return ShuffleNet({"out_planes": [240, 480, 960], "num_blocks": [4, 8, 4], "groups": 3}, num_classes=num_classes)
