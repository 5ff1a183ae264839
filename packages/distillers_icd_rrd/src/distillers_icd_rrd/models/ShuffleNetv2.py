# ruff: noqa: N999 (module name kept from the original `models/ShuffleNetv2.py`)
"""ShuffleNetV2 of RepDistiller (`models/ShuffleNetv2.py`); `ShuffleV2` is net_size 1 (116/232/464 → 1024).

Each stage is a stride-2 `DownBlock` followed by split-transform-concat-shuffle `BasicBlock`s; the stage's last block
returns its un-shuffled pre-ReLU concat for `preact=True`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdrepro_shared.errors import KdReproError


class ShuffleBlock(nn.Module):
    """Channel shuffle: [N,C,H,W] → [N,g,C/g,H,W] → [N,C/g,g,H,W] → [N,C,H,W]."""

    def __init__(self, groups: int = 2) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Interleave the channels of the `groups` groups."""
        n, c, h, w = x.size()
        g = self.groups
        return x.view(n, g, c // g, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


class SplitBlock(nn.Module):
    """Split the channels at `ratio` into (first part, rest)."""

    def __init__(self, ratio: float) -> None:
        super().__init__()
        self.ratio = ratio

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the two channel slices."""
        c = int(x.size(1) * self.ratio)
        return x[:, :c, :, :], x[:, c:, :, :]


class BasicBlock(nn.Module):
    """Keep half the channels, transform the other half (1×1 → dw 3×3 → 1×1), concat and shuffle."""

    def __init__(self, in_channels: int, split_ratio: float = 0.5, is_last: bool = False) -> None:
        super().__init__()
        self.is_last = is_last
        self.split = SplitBlock(split_ratio)
        in_channels = int(in_channels * split_ratio)
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(
            in_channels, in_channels, kernel_size=3, stride=1, padding=1, groups=in_channels, bias=False
        )
        self.bn2 = nn.BatchNorm2d(in_channels)
        self.conv3 = nn.Conv2d(in_channels, in_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(in_channels)
        self.shuffle = ShuffleBlock()

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Shuffled output, or `(output, cat(x1, bn3 output))` (the latter not shuffled) when last in its stage."""
        x1, x2 = self.split(x)
        out = F.relu(self.bn1(self.conv1(x2)))
        out = self.bn2(self.conv2(out))
        pre = self.bn3(self.conv3(out))
        out = torch.cat([x1, F.relu(pre)], 1)
        out = self.shuffle(out)
        if self.is_last:
            return out, torch.cat([x1, pre], 1)
        return out


class DownBlock(nn.Module):
    """Stride-2 unit: a depthwise-then-1×1 branch and a 1×1-dw-1×1 branch, concatenated and shuffled."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid_channels = out_channels // 2
        self.conv1 = nn.Conv2d(
            in_channels, in_channels, kernel_size=3, stride=2, padding=1, groups=in_channels, bias=False
        )
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid_channels, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(in_channels, mid_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid_channels)
        self.conv4 = nn.Conv2d(
            mid_channels, mid_channels, kernel_size=3, stride=2, padding=1, groups=mid_channels, bias=False
        )
        self.bn4 = nn.BatchNorm2d(mid_channels)
        self.conv5 = nn.Conv2d(mid_channels, mid_channels, kernel_size=1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid_channels)
        self.shuffle = ShuffleBlock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the left and right branches, then shuffle."""
        out1 = self.bn1(self.conv1(x))
        out1 = F.relu(self.bn2(self.conv2(out1)))
        out2 = F.relu(self.bn3(self.conv3(x)))
        out2 = self.bn4(self.conv4(out2))
        out2 = F.relu(self.bn5(self.conv5(out2)))
        return self.shuffle(torch.cat([out1, out2], 1))


configs: dict[float, dict[str, tuple[int, ...]]] = {
    0.2: {"out_channels": (40, 80, 160, 512), "num_blocks": (3, 3, 3)},
    0.3: {"out_channels": (40, 80, 160, 512), "num_blocks": (3, 7, 3)},
    0.5: {"out_channels": (48, 96, 192, 1024), "num_blocks": (3, 7, 3)},
    1: {"out_channels": (116, 232, 464, 1024), "num_blocks": (3, 7, 3)},
    1.5: {"out_channels": (176, 352, 704, 1024), "num_blocks": (3, 7, 3)},
    2: {"out_channels": (224, 488, 976, 2048), "num_blocks": (3, 7, 3)},
}


class ShuffleNetV2(nn.Module):
    """CIFAR ShuffleNetV2: 1×1 stem to 24 channels (no max-pool), three stages, 1×1 `conv2`, 4×4 pool, `linear`."""

    def __init__(self, net_size: float, num_classes: int = 10) -> None:
        super().__init__()
        out_channels = configs[net_size]["out_channels"]
        num_blocks = configs[net_size]["num_blocks"]
        self.conv1 = nn.Conv2d(3, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.in_channels = 24
        self.layer1 = self._make_layer(out_channels[0], num_blocks[0])
        self.layer2 = self._make_layer(out_channels[1], num_blocks[1])
        self.layer3 = self._make_layer(out_channels[2], num_blocks[2])
        self.conv2 = nn.Conv2d(out_channels[2], out_channels[3], kernel_size=1, stride=1, padding=0, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.linear = nn.Linear(out_channels[3], num_classes)

    def _make_layer(self, out_channels: int, num_blocks: int) -> nn.Sequential:
        """`DownBlock` then `num_blocks` `BasicBlock`s, the last flagged `is_last`."""
        layers: list[nn.Module] = [DownBlock(self.in_channels, out_channels)]
        layers.extend(BasicBlock(out_channels, is_last=(i == num_blocks - 1)) for i in range(num_blocks))
        self.in_channels = out_channels
        return nn.Sequential(*layers)

    def get_feat_modules(self) -> nn.ModuleList:
        """Modules producing the hooked features."""
        return nn.ModuleList([self.conv1, self.bn1, self.layer1, self.layer2, self.layer3])

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        """ShuffleNetV2 has no BN-before-ReLU list, as in the original: a method that needs one cannot use it."""
        raise KdReproError('ShuffleV2 cannot be an "Overhaul"-style teacher: it has no BN-before-ReLU layer list')

    def forward(
        self, x: torch.Tensor, is_feat: bool = False, preact: bool = False
    ) -> torch.Tensor | tuple[list[torch.Tensor], torch.Tensor]:
        """Logits, or `([f0, f1, f2, f3, f4], logits)` (stage outputs replaced by their preact tensors if `preact`)."""
        out = F.relu(self.bn1(self.conv1(x)))
        f0 = out
        out, f1_pre = self.layer1(out)
        f1 = out
        out, f2_pre = self.layer2(out)
        f2 = out
        out, f3_pre = self.layer3(out)
        f3 = out
        out = F.relu(self.bn2(self.conv2(out)))
        out = F.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        f4 = out
        out = self.linear(out)
        if not is_feat:
            return out
        if preact:
            return [f0, f1_pre, f2_pre, f3_pre, f4], out
        return [f0, f1, f2, f3, f4], out


def ShuffleV2(num_classes: int = 10) -> ShuffleNetV2:  # noqa: N802 (the original's public name)
    """ShuffleNetV2 at net_size 1."""
    return ShuffleNetV2(net_size=1, num_classes=num_classes)
