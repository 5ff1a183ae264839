"""CIFAR variants of the ImageNet ResNets (`models/resnetv2.py`, kuangliu style); only `ResNet50` is in `model_dict`.

Stride-1 3×3 stem without max-pool, four stages and adaptive average pooling. With `preact=True` the original returns
the pair as a *list* `[feats, logits]`; this is kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with a (possibly empty) `shortcut`; `is_last` also returns the pre-ReLU sum."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, is_last: bool = False) -> None:
        super().__init__()
        self.is_last = is_last
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, self.expansion * planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Residual unit returning `(relu(sum), sum)` when last in its stage."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        preact = out
        out = F.relu(out)
        return (out, preact) if self.is_last else out


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride) → 1×1 (4·planes) residual unit used by ResNet50."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, is_last: bool = False) -> None:
        super().__init__()
        self.is_last = is_last
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, self.expansion * planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(self.expansion * planes)
        self.shortcut = _shortcut(in_planes, self.expansion * planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Bottleneck residual unit returning `(relu(sum), sum)` when last in its stage."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        preact = out
        out = F.relu(out)
        return (out, preact) if self.is_last else out


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    """Projection shortcut (1×1 conv + BN) when shape changes, otherwise an empty Sequential (identity, no keys)."""
    if stride != 1 or in_planes != out_planes:
        return nn.Sequential(
            nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
        )
    return nn.Sequential()


class ResNet(nn.Module):
    """Four-stage ResNet for 32×32 inputs with a `linear` classifier on the 1×1-pooled features."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        num_blocks: list[int],
        num_classes: int = 10,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        # Goyal et al. (arXiv 1706.02677): zeroing each branch's last BN makes blocks start as identities.
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def get_feat_modules(self) -> nn.ModuleList:
        """Modules producing the hooked features."""
        return nn.ModuleList([self.conv1, self.bn1, self.layer1, self.layer2, self.layer3, self.layer4])

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        """The last BN of each stage's final block."""
        layers = [self.layer1, self.layer2, self.layer3, self.layer4]
        if isinstance(self.layer1[0], Bottleneck):
            return [layer[-1].bn3 for layer in layers]
        if isinstance(self.layer1[0], BasicBlock):
            return [layer[-1].bn2 for layer in layers]
        raise TypeError(f"unknown ResNet block {type(self.layer1[0]).__name__}")

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, num_blocks: int, stride: int
    ) -> nn.Sequential:
        """One stage: the first block carries the stride; the last is flagged `is_last`."""
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for i, s in enumerate(strides):
            layers.append(block(self.in_planes, planes, s, i == num_blocks - 1))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, is_feat: bool = False, preact: bool = False
    ) -> torch.Tensor | tuple[list[torch.Tensor], torch.Tensor] | list:
        """Logits, or features `[f0, f1..f4, f5]` with logits (a list `[feats, logits]` when `preact`)."""
        out = F.relu(self.bn1(self.conv1(x)))
        f0 = out
        out, f1_pre = self.layer1(out)
        f1 = out
        out, f2_pre = self.layer2(out)
        f2 = out
        out, f3_pre = self.layer3(out)
        f3 = out
        out, f4_pre = self.layer4(out)
        f4 = out
        out = self.avgpool(out)
        out = out.view(out.size(0), -1)
        f5 = out
        out = self.linear(out)
        if not is_feat:
            return out
        if preact:
            return [[f0, f1_pre, f2_pre, f3_pre, f4_pre, f5], out]
        return [f0, f1, f2, f3, f4, f5], out


def ResNet18(num_classes: int = 10) -> ResNet:  # noqa: N802 (the original's public name)
    """ResNet-18 (BasicBlock ×[2,2,2,2])."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)


def ResNet34(num_classes: int = 10) -> ResNet:  # noqa: N802
    """ResNet-34 (BasicBlock ×[3,4,6,3])."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes)


def ResNet50(num_classes: int = 10) -> ResNet:  # noqa: N802
    """ResNet-50 (Bottleneck ×[3,4,6,3]); the `ResNet50` teacher of the benchmark."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)


def ResNet101(num_classes: int = 10) -> ResNet:  # noqa: N802
    """ResNet-101 (Bottleneck ×[3,4,23,3])."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes)


def ResNet152(num_classes: int = 10) -> ResNet:  # noqa: N802
    """ResNet-152 (Bottleneck ×[3,8,36,3])."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes=num_classes)
