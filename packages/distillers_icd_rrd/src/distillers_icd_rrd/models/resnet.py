"""CIFAR ResNets of RepDistiller (`models/resnet.py`): resnet8 … resnet110 and the 4×-wide resnet8x4 / resnet32x4.

The last block of every stage also returns its pre-ReLU residual sum, so `forward(x, is_feat=True, preact=True)`
can expose it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution with padding 1 and no bias, the building unit of every block."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers plus a shortcut; with `is_last` it returns `(relu(sum), sum)`."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, is_last: bool = False
    ) -> None:
        super().__init__()
        self.is_last = is_last
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Residual unit; the sum is kept un-activated as `preact` (ReLU is applied out of place)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        out += residual
        preact = out
        out = F.relu(out)
        return (out, preact) if self.is_last else out


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 (×4 channels) residual unit; defined by the original but not registered in `model_dict`."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, is_last: bool = False
    ) -> None:
        super().__init__()
        self.is_last = is_last
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Bottleneck residual unit with the same `(out, preact)` convention as `BasicBlock`."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        out += residual
        preact = out
        out = F.relu(out)
        return (out, preact) if self.is_last else out


class ResNet(nn.Module):
    """CIFAR ResNet: 3×3 stem, three stages of n blocks (strides 1/2/2), 8×8 average pool and a linear `fc`."""

    def __init__(
        self, depth: int, num_filters: list[int], block_name: str = "BasicBlock", num_classes: int = 10
    ) -> None:
        super().__init__()
        if block_name.lower() == "basicblock":
            assert (depth - 2) % 6 == 0, "When use basicblock, depth should be 6n+2, e.g. 20, 32, 44, 56, 110, 1202"
            n = (depth - 2) // 6
            block: type[BasicBlock] | type[Bottleneck] = BasicBlock
        elif block_name.lower() == "bottleneck":
            assert (depth - 2) % 9 == 0, "When use bottleneck, depth should be 9n+2, e.g. 20, 29, 47, 56, 110, 1199"
            n = (depth - 2) // 9
            block = Bottleneck
        else:
            raise ValueError("block_name shoule be Basicblock or Bottleneck")

        self.inplanes = num_filters[0]
        self.conv1 = nn.Conv2d(3, num_filters[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(num_filters[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, num_filters[1], n)
        self.layer2 = self._make_layer(block, num_filters[2], n, stride=2)
        self.layer3 = self._make_layer(block, num_filters[3], n, stride=2)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(num_filters[3] * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        """One stage; block 0 gets a 1×1 conv-BN `downsample` when the stride or width changes."""
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, is_last=(blocks == 1))]
        self.inplanes = planes * block.expansion
        layers.extend(block(self.inplanes, planes, is_last=(i == blocks - 1)) for i in range(1, blocks))
        return nn.Sequential(*layers)

    def get_feat_modules(self) -> nn.ModuleList:
        """Modules producing the hooked features (used to add them to the optimiser in FitNet-style pre-training)."""
        return nn.ModuleList([self.conv1, self.bn1, self.relu, self.layer1, self.layer2, self.layer3])

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        """The last BN of each stage, i.e. the layer right before the stage-output ReLU."""
        if isinstance(self.layer1[0], Bottleneck):
            return [self.layer1[-1].bn3, self.layer2[-1].bn3, self.layer3[-1].bn3]
        if isinstance(self.layer1[0], BasicBlock):
            return [self.layer1[-1].bn2, self.layer2[-1].bn2, self.layer3[-1].bn2]
        raise TypeError(f"unknown ResNet block {type(self.layer1[0]).__name__}")

    def forward(
        self, x: torch.Tensor, is_feat: bool = False, preact: bool = False
    ) -> torch.Tensor | tuple[list[torch.Tensor], torch.Tensor]:
        """Logits, or `([f0, f1, f2, f3, f4], logits)` with stage outputs post-ReLU (pre-ReLU sums if `preact`)."""
        x = self.relu(self.bn1(self.conv1(x)))
        f0 = x
        x, f1_pre = self.layer1(x)
        f1 = x
        x, f2_pre = self.layer2(x)
        f2 = x
        x, f3_pre = self.layer3(x)
        f3 = x
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        f4 = x
        x = self.fc(x)
        if not is_feat:
            return x
        if preact:
            return [f0, f1_pre, f2_pre, f3_pre, f4], x
        return [f0, f1, f2, f3, f4], x


def resnet8(num_classes: int = 10) -> ResNet:
    """ResNet-8 (1 block per stage, widths 16/16/32/64)."""
    return ResNet(8, [16, 16, 32, 64], "basicblock", num_classes=num_classes)


def resnet14(num_classes: int = 10) -> ResNet:
    """ResNet-14 (2 blocks per stage)."""
    return ResNet(14, [16, 16, 32, 64], "basicblock", num_classes=num_classes)


def resnet20(num_classes: int = 10) -> ResNet:
    """ResNet-20 (3 blocks per stage)."""
    return ResNet(20, [16, 16, 32, 64], "basicblock", num_classes=num_classes)


def resnet32(num_classes: int = 10) -> ResNet:
    """ResNet-32 (5 blocks per stage)."""
    return ResNet(32, [16, 16, 32, 64], "basicblock", num_classes=num_classes)


def resnet44(num_classes: int = 10) -> ResNet:
    """ResNet-44 (7 blocks per stage)."""
    return ResNet(44, [16, 16, 32, 64], "basicblock", num_classes=num_classes)


def resnet56(num_classes: int = 10) -> ResNet:
    """ResNet-56 (9 blocks per stage)."""
    return ResNet(56, [16, 16, 32, 64], "basicblock", num_classes=num_classes)


def resnet110(num_classes: int = 10) -> ResNet:
    """ResNet-110 (18 blocks per stage)."""
    return ResNet(110, [16, 16, 32, 64], "basicblock", num_classes=num_classes)


def resnet8x4(num_classes: int = 10) -> ResNet:
    """ResNet-8 with 4× widths (32/64/128/256)."""
    return ResNet(8, [32, 64, 128, 256], "basicblock", num_classes=num_classes)


def resnet32x4(num_classes: int = 10) -> ResNet:
    """ResNet-32 with 4× widths (32/64/128/256)."""
    return ResNet(32, [32, 64, 128, 256], "basicblock", num_classes=num_classes)
