"""CIFAR VGGs of RepDistiller (`models/vgg.py`): five conv blocks, `model_dict` registers the BN variants vgg8…vgg19.

Each block ends in its last BN (the final ReLU is dropped so the pre-ReLU map is a feature). `pool3` is applied only to
64×64 inputs, so on CIFAR `block4` runs at 4×4.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

cfg: dict[str, list[list[int]]] = {
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "B": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "D": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "E": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
    "S": [[64], [128], [256], [512], [512]],
}


class VGG(nn.Module):
    """VGG with blocks `block0..block4`, pools `pool0..pool4` and a single `classifier` Linear(512, C)."""

    def __init__(self, cfg: list[list[int]], batch_norm: bool = False, num_classes: int = 1000) -> None:
        super().__init__()
        self.block0 = self._make_layers(cfg[0], batch_norm, 3)
        self.block1 = self._make_layers(cfg[1], batch_norm, cfg[0][-1])
        self.block2 = self._make_layers(cfg[2], batch_norm, cfg[1][-1])
        self.block3 = self._make_layers(cfg[3], batch_norm, cfg[2][-1])
        self.block4 = self._make_layers(cfg[4], batch_norm, cfg[3][-1])
        self.pool0 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool3 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool4 = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(512, num_classes)
        self._initialize_weights()

    def get_feat_modules(self) -> nn.ModuleList:
        """Blocks and pools in forward order."""
        blocks = [self.block0, self.block1, self.block2, self.block3, self.block4]
        pools = [self.pool0, self.pool1, self.pool2, self.pool3, self.pool4]
        return nn.ModuleList(m for pair in zip(blocks, pools, strict=True) for m in pair)

    def get_bn_before_relu(self) -> list[nn.Module]:
        """The last module (BN in the BN variants) of blocks 1–4."""
        return [self.block1[-1], self.block2[-1], self.block3[-1], self.block4[-1]]

    def forward(
        self, x: torch.Tensor, is_feat: bool = False, preact: bool = False
    ) -> torch.Tensor | tuple[list[torch.Tensor], torch.Tensor]:
        """Logits, or `([f0, f1..f4, f5], logits)` with f1–f4 post-ReLU (pre-ReLU block outputs if `preact`)."""
        h = x.shape[2]
        x = F.relu(self.block0(x))
        f0 = x
        x = self.pool0(x)
        x = self.block1(x)
        f1_pre = x
        x = F.relu(x)
        f1 = x
        x = self.pool1(x)
        x = self.block2(x)
        f2_pre = x
        x = F.relu(x)
        f2 = x
        x = self.pool2(x)
        x = self.block3(x)
        f3_pre = x
        x = F.relu(x)
        f3 = x
        if h == 64:
            x = self.pool3(x)
        x = self.block4(x)
        f4_pre = x
        x = F.relu(x)
        f4 = x
        x = self.pool4(x)
        x = x.view(x.size(0), -1)
        f5 = x
        x = self.classifier(x)
        if not is_feat:
            return x
        if preact:
            return [f0, f1_pre, f2_pre, f3_pre, f4_pre, f5], x
        return [f0, f1, f2, f3, f4, f5], x

    @staticmethod
    def _make_layers(cfg: list[int], batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
        """Conv3×3(+BN)+ReLU per width, without the trailing ReLU (so indices are 0,3,6,… / 1,4,7,… for BN)."""
        layers: list[nn.Module] = []
        for v in cfg:
            conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
            if batch_norm:
                layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            else:
                layers += [conv2d, nn.ReLU(inplace=True)]
            in_channels = v
        return nn.Sequential(*layers[:-1])

    def _initialize_weights(self) -> None:
        """Conv N(0, √(2/(k²·out))) with zero bias, BN 1/0, Linear N(0, 0.01) with zero bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / fan))
                if m.bias is not None:
                    m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.weight.data.normal_(0, 0.01)
                m.bias.data.zero_()


def vgg8(num_classes: int = 1000) -> VGG:
    """VGG-8 without BN (configuration "S")."""
    return VGG(cfg["S"], num_classes=num_classes)


def vgg8_bn(num_classes: int = 1000) -> VGG:
    """VGG-8 with BN (configuration "S"); `model_dict['vgg8']`."""
    return VGG(cfg["S"], batch_norm=True, num_classes=num_classes)


def vgg11(num_classes: int = 1000) -> VGG:
    """VGG-11 without BN (configuration "A")."""
    return VGG(cfg["A"], num_classes=num_classes)


def vgg11_bn(num_classes: int = 1000) -> VGG:
    """VGG-11 with BN (configuration "A"); `model_dict['vgg11']`."""
    return VGG(cfg["A"], batch_norm=True, num_classes=num_classes)


def vgg13(num_classes: int = 1000) -> VGG:
    """VGG-13 without BN (configuration "B")."""
    return VGG(cfg["B"], num_classes=num_classes)


def vgg13_bn(num_classes: int = 1000) -> VGG:
    """VGG-13 with BN (configuration "B"); `model_dict['vgg13']`."""
    return VGG(cfg["B"], batch_norm=True, num_classes=num_classes)


def vgg16(num_classes: int = 1000) -> VGG:
    """VGG-16 without BN (configuration "D")."""
    return VGG(cfg["D"], num_classes=num_classes)


def vgg16_bn(num_classes: int = 1000) -> VGG:
    """VGG-16 with BN (configuration "D"); `model_dict['vgg16']`."""
    return VGG(cfg["D"], batch_norm=True, num_classes=num_classes)


def vgg19(num_classes: int = 1000) -> VGG:
    """VGG-19 without BN (configuration "E")."""
    return VGG(cfg["E"], num_classes=num_classes)


def vgg19_bn(num_classes: int = 1000) -> VGG:
    """VGG-19 with BN (configuration "E"); `model_dict['vgg19']`."""
    return VGG(cfg["E"], batch_norm=True, num_classes=num_classes)
