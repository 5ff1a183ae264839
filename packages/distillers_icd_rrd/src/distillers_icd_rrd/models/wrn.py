"""Wide ResNets of RepDistiller (`models/wrn.py`): wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2 (pre-activation blocks).

The stage features are the raw block outputs (never ReLU'd); with `preact=True` they are passed once more through the
next BN (`block2.layer[0].bn1`, `block3.layer[0].bn1`, `bn1`), which in train mode updates those running stats a
second time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """Pre-activation BN-ReLU-conv ×2 unit; the 1×1 `convShortcut` exists only when in ≠ out channels."""

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
        """shortcut + conv2(relu(bn2(conv1(relu(bn1(x)))))); the shortcut sees the activated x when widths differ."""
        if self.equalInOut:
            out = self.relu1(self.bn1(x))
            shortcut = x
        else:
            x = self.relu1(self.bn1(x))
            out = x
            shortcut = self.convShortcut(x)
        out = self.relu2(self.bn2(self.conv1(out)))
        if self.droprate > 0:
            out = F.dropout(out, p=self.droprate, training=self.training)
        out = self.conv2(out)
        return torch.add(shortcut, out)


class NetworkBlock(nn.Module):
    """A stage: `layer` = Sequential of `nb_layers` blocks, the first one carrying the stride and width change."""

    def __init__(  # noqa: PLR0917 (the original's positional signature)
        self,
        nb_layers: int,
        in_planes: int,
        out_planes: int,
        block: type[BasicBlock],
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


class WideResNet(nn.Module):
    """WRN-depth-k: 3×3 stem, three `NetworkBlock`s (strides 1/2/2), final BN-ReLU, 8×8 average pool, `fc`."""

    def __init__(self, depth: int, num_classes: int, widen_factor: int = 1, drop_rate: float = 0.0) -> None:
        super().__init__()
        n_channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        assert (depth - 4) % 6 == 0, "depth should be 6n+4"
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, n_channels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, n_channels[0], n_channels[1], BasicBlock, 1, drop_rate)
        self.block2 = NetworkBlock(n, n_channels[1], n_channels[2], BasicBlock, 2, drop_rate)
        self.block3 = NetworkBlock(n, n_channels[2], n_channels[3], BasicBlock, 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(n_channels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(n_channels[3], num_classes)
        self.nChannels = n_channels[3]

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / fan))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def get_feat_modules(self) -> nn.ModuleList:
        """Modules producing the hooked features (the final `bn1` is not among them, as in the original)."""
        return nn.ModuleList([self.conv1, self.block1, self.block2, self.block3])

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        """The BN that each stage output meets next."""
        return [self.block2.layer[0].bn1, self.block3.layer[0].bn1, self.bn1]

    def forward(
        self, x: torch.Tensor, is_feat: bool = False, preact: bool = False
    ) -> torch.Tensor | tuple[list[torch.Tensor], torch.Tensor]:
        """Logits, or `([f0, f1, f2, f3, f4], logits)`; with `preact` f1–f3 are re-normalised by the next BN."""
        out = self.conv1(x)
        f0 = out
        out = self.block1(out)
        f1 = out
        out = self.block2(out)
        f2 = out
        out = self.block3(out)
        f3 = out
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, 8)
        out = out.view(-1, self.nChannels)
        f4 = out
        out = self.fc(out)
        if not is_feat:
            return out
        if preact:
            f1 = self.block2.layer[0].bn1(f1)
            f2 = self.block3.layer[0].bn1(f2)
            f3 = self.bn1(f3)
        return [f0, f1, f2, f3, f4], out


def wrn(depth: int, num_classes: int, widen_factor: int = 1, drop_rate: float = 0.0) -> WideResNet:
    """Generic Wide ResNet constructor."""
    return WideResNet(depth, num_classes, widen_factor, drop_rate)


def wrn_40_2(num_classes: int, drop_rate: float = 0.0) -> WideResNet:
    """WRN-40-2 (6 blocks per stage, widths 32/64/128)."""
    return WideResNet(depth=40, num_classes=num_classes, widen_factor=2, drop_rate=drop_rate)


def wrn_40_1(num_classes: int, drop_rate: float = 0.0) -> WideResNet:
    """WRN-40-1 (6 blocks per stage, widths 16/32/64)."""
    return WideResNet(depth=40, num_classes=num_classes, widen_factor=1, drop_rate=drop_rate)


def wrn_16_2(num_classes: int, drop_rate: float = 0.0) -> WideResNet:
    """WRN-16-2 (2 blocks per stage, widths 32/64/128)."""
    return WideResNet(depth=16, num_classes=num_classes, widen_factor=2, drop_rate=drop_rate)


def wrn_16_1(num_classes: int, drop_rate: float = 0.0) -> WideResNet:
    """WRN-16-1 (2 blocks per stage, widths 16/32/64)."""
    return WideResNet(depth=16, num_classes=num_classes, widen_factor=1, drop_rate=drop_rate)
