"""`feature_extractors.mobilenetv2`: RepDistiller's MobileNetV2 for CIFAR, built as `mobile_half` (T=6, width 0.5).

`flatten_when_split` makes `split_network` unroll `conv1`, `blocks` and `conv2` one level, as the original did for
this class, so the extractor has 13 entries (stem conv/BN/ReLU, 7 block groups, conv2 conv/BN/ReLU).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from kdrepro_shared.errors import KdReproError
from letkd.distillation.architectures.tools import Reshape

# (expansion t, channels c, repeats n, first stride s) per block group, channels before the width multiplier.
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), ("T", 24, 2, 1), ("T", 32, 3, 2), ("T", 64, 4, 2), ("T", 96, 3, 1),
                             ("T", 160, 3, 2), ("T", 320, 1, 1))  # fmt: skip


def conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    """conv3×3(stride)-BN-ReLU."""
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True))


def conv_1x1_bn(inp: int, oup: int) -> nn.Sequential:
    """conv1×1-BN-ReLU."""
    return nn.Sequential(nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True))


class InvertedResidual(nn.Module):
    """1×1 expand-BN-ReLU, depthwise 3×3-BN-ReLU, 1×1 project-BN; residual when stride 1 and widths match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise KdReproError(f"InvertedResidual stride must be 1 or 2, got {stride}")
        self.stride = stride
        self.use_res_connect = stride == 1 and inp == oup
        hidden = inp * expand_ratio
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output."""
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """Stem conv3×3 s2, 7 groups of inverted residuals, conv2 1×1 to 1280, average pool, linear classifier."""

    flatten_when_split = True

    def __init__(
        self,
        T: int,  # noqa: N803 - the original's keyword
        feature_dim: int,
        input_size: int = 32,
        width_mult: float = 1.0,
        remove_avg: bool = False,
    ) -> None:
        super().__init__()
        if input_size % 32 != 0:
            raise KdReproError(f"mobilenetv2 input_size must be a multiple of 32, got {input_size}")
        self.remove_avg = remove_avg
        input_channel = int(32 * width_mult)
        self.conv1 = conv_bn(3, input_channel, 2)
        self.blocks = nn.ModuleList([])
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            output_channel = int(c * width_mult)
            group = []
            for stride in [s] + [1] * (n - 1):
                group.append(InvertedResidual(input_channel, output_channel, stride, T if t == "T" else t))
                input_channel = output_channel
            self.blocks.append(nn.Sequential(*group))
        self.last_channel = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = conv_1x1_bn(input_channel, self.last_channel)
        self.avgpool = nn.AvgPool2d(input_size // 16, ceil_mode=True)
        self.reshape = Reshape(-1, self.last_channel)
        self.classifier = nn.Sequential(nn.Linear(self.last_channel, feature_dim))
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        """Convs N(0, √(2/(k²·out))), BN 1/0, Linear N(0, 0.01) with zero bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.weight.data.normal_(0, 0.01)
                m.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (the average pool is skipped when `remove_avg`)."""
        x = self.conv1(x)
        for group in self.blocks:
            x = group(x)
        x = self.conv2(x)
        if not self.remove_avg:
            x = self.avgpool(x)
        return self.classifier(self.reshape(x))


def mobilenetv2_T_w(T: int, W: float, feature_dim: int = 100, input_size: int = 32) -> MobileNetV2:  # noqa: N802, N803
    """MobileNetV2 with expansion `T` and width multiplier `W`."""
    return MobileNetV2(T=T, feature_dim=feature_dim, input_size=input_size, width_mult=W)


def mobile_half(num_classes: int, input_size: int = 32) -> MobileNetV2:
    """The half-width MobileNetV2 (T=6, W=0.5) used as the CIFAR student."""
    return mobilenetv2_T_w(6, 0.5, num_classes, input_size)


def create_model(opt: dict[str, Any]) -> MobileNetV2:
    """Factory entry point: `num_classes`, optional `input_size` (default 32)."""
    return mobile_half(num_classes=opt["num_classes"], input_size=opt.get("input_size", 32))
