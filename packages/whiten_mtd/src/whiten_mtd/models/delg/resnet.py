"""pycls ResNet (stem, stages s1-s4 of residual blocks) with the DELG global head: GeM with a learnable power, fc.

Module and key names follow pycls (`stem.conv`, `s3.b2.f.b_bn`, `head.pool.p`, ...), so the released DELG/DOLG
checkpoints load strictly. Every builder takes the frozen yacs `cfg` of its model.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from yacs.config import CfgNode

from kdrepro_shared.errors import KdReproError

__all__ = [
    "GeneralizedMeanPooling",
    "GeneralizedMeanPoolingP",
    "GlobalHead",
    "ResNet",
    "ResNetTrunk",
    "init_weights",
]

STAGE_DEPTHS: dict[int, tuple[int, int, int, int]] = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class GeneralizedMeanPooling(nn.Module):
    """pycls GeM: adaptive_avg_pool2d(clamp(x, eps)^p)^(1/p), output (B, C, 1, 1) for output_size 1."""

    def __init__(self, norm: float, output_size: int = 1, eps: float = 1e-6) -> None:
        super().__init__()
        if norm <= 0:
            raise ValueError(f"GeM power must be positive, got {norm}")
        self.p: float | nn.Parameter = float(norm)
        self.output_size = output_size
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(self.p), self.output_size)
        return pooled.pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f"p={self.p if isinstance(self.p, float) else self.p.item()}, output_size={self.output_size}"


class GeneralizedMeanPoolingP(GeneralizedMeanPooling):
    """GeM whose power is a trainable parameter `p` of shape [1] (a state_dict entry)."""

    def __init__(self, norm: float = 3, output_size: int = 1, eps: float = 1e-6) -> None:
        super().__init__(norm, output_size, eps)
        self.p = nn.Parameter(torch.ones(1) * norm)


class GlobalHead(nn.Module):
    """DELG global head: GeM-P pooling, flatten, Linear(w_in, nc)."""

    def __init__(self, w_in: int, nc: int) -> None:
        super().__init__()
        self.pool = GeneralizedMeanPoolingP()
        self.fc = nn.Linear(w_in, nc, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x).flatten(1))


def _bn(cfg: CfgNode, width: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(width, eps=cfg.BN.EPS, momentum=cfg.BN.MOM)


class BasicTransform(nn.Module):
    """3x3, BN, ReLU, 3x3, BN."""

    def __init__(self, cfg: CfgNode, w_in: int, w_out: int, *, stride: int, w_b: int | None = None, num_gs: int = 1):
        super().__init__()
        if w_b is not None or num_gs != 1:
            raise ValueError("basic_transform does not support a bottleneck width or groups")
        self.a = nn.Conv2d(w_in, w_out, 3, stride=stride, padding=1, bias=False)
        self.a_bn = _bn(cfg, w_out)
        self.a_relu = nn.ReLU(inplace=cfg.MEM.RELU_INPLACE)
        self.b = nn.Conv2d(w_out, w_out, 3, stride=1, padding=1, bias=False)
        self.b_bn = _bn(cfg, w_out)
        self.b_bn.final_bn = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


class BottleneckTransform(nn.Module):
    """1x1, BN, ReLU, 3x3 (grouped), BN, ReLU, 1x1, BN; the stride sits on the 1x1 if STRIDE_1X1 else on the 3x3."""

    def __init__(self, cfg: CfgNode, w_in: int, w_out: int, *, stride: int, w_b: int, num_gs: int) -> None:
        super().__init__()
        s1, s3 = (stride, 1) if cfg.RESNET.STRIDE_1X1 else (1, stride)
        self.a = nn.Conv2d(w_in, w_b, 1, stride=s1, padding=0, bias=False)
        self.a_bn = _bn(cfg, w_b)
        self.a_relu = nn.ReLU(inplace=cfg.MEM.RELU_INPLACE)
        self.b = nn.Conv2d(w_b, w_b, 3, stride=s3, padding=1, groups=num_gs, bias=False)
        self.b_bn = _bn(cfg, w_b)
        self.b_relu = nn.ReLU(inplace=cfg.MEM.RELU_INPLACE)
        self.c = nn.Conv2d(w_b, w_out, 1, stride=1, padding=0, bias=False)
        self.c_bn = _bn(cfg, w_out)
        self.c_bn.final_bn = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


TRANSFORMS: dict[str, type[nn.Module]] = {
    "basic_transform": BasicTransform,
    "bottleneck_transform": BottleneckTransform,
}


class ResBlock(nn.Module):
    """relu(F(x) + shortcut(x)); the shortcut is a strided 1x1 projection + BN when the shape changes."""

    def __init__(self, cfg: CfgNode, w_in: int, w_out: int, *, stride: int, w_b: int | None, num_gs: int) -> None:
        super().__init__()
        self.proj_block = (w_in != w_out) or (stride != 1)
        if self.proj_block:
            self.proj = nn.Conv2d(w_in, w_out, 1, stride=stride, padding=0, bias=False)
            self.bn = _bn(cfg, w_out)
        self.f = TRANSFORMS[cfg.RESNET.TRANS_FUN](cfg, w_in, w_out, stride=stride, w_b=w_b, num_gs=num_gs)
        self.relu = nn.ReLU(cfg.MEM.RELU_INPLACE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.bn(self.proj(x)) if self.proj_block else x
        return self.relu(shortcut + self.f(x))


class ResStage(nn.Module):
    """`d` residual blocks `b1..bd`; only the first one changes width and stride."""

    def __init__(self, cfg: CfgNode, w_in: int, w_out: int, *, stride: int, d: int, w_b: int | None, num_gs: int):
        super().__init__()
        for i in range(d):
            first = i == 0
            block = ResBlock(
                cfg, w_in if first else w_out, w_out, stride=stride if first else 1, w_b=w_b, num_gs=num_gs
            )
            self.add_module(f"b{i + 1}", block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x


class ResStemIN(nn.Module):
    """ImageNet stem: 7x7/2 conv, BN, ReLU, 3x3/2 max-pool."""

    def __init__(self, cfg: CfgNode, w_in: int, w_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(w_in, w_out, 7, stride=2, padding=3, bias=False)
        self.bn = _bn(cfg, w_out)
        self.relu = nn.ReLU(cfg.MEM.RELU_INPLACE)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


def init_weights(cfg: CfgNode, m: nn.Module) -> None:
    """pycls init: conv N(0, sqrt(2/fan_out)); BN gamma 1 (0 on final BNs if ZERO_INIT_FINAL_GAMMA), beta 0;
    Linear N(0, 0.01), bias 0."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
        m.weight.data.normal_(mean=0.0, std=math.sqrt(2.0 / fan_out))
    elif isinstance(m, nn.BatchNorm2d):
        zero_gamma = getattr(m, "final_bn", False) and cfg.BN.ZERO_INIT_FINAL_GAMMA
        m.weight.data.fill_(0.0 if zero_gamma else 1.0)
        m.bias.data.zero_()
    elif isinstance(m, nn.Linear):
        m.weight.data.normal_(mean=0.0, std=0.01)
        m.bias.data.zero_()


class ResNetTrunk(nn.Module):
    """pycls ResNet stem + stages s1..s4 (no head); forward returns the stage-3 and stage-4 maps (x3, x4)."""

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        if cfg.MODEL.DEPTH not in STAGE_DEPTHS:
            raise KdReproError(f"pycls ResNet depth {cfg.MODEL.DEPTH} is not supported (valid: 50, 101, 152)")
        if cfg.RESNET.TRANS_FUN not in TRANSFORMS:
            raise KdReproError(
                f"RESNET.TRANS_FUN {cfg.RESNET.TRANS_FUN!r} is not supported (valid: {', '.join(TRANSFORMS)})"
            )
        self.cfg = cfg
        self._construct()
        self.apply(lambda m: init_weights(cfg, m))

    def _construct(self) -> None:
        cfg = self.cfg
        g, gw = cfg.RESNET.NUM_GROUPS, cfg.RESNET.WIDTH_PER_GROUP
        d1, d2, d3, d4 = STAGE_DEPTHS[cfg.MODEL.DEPTH]
        w_b = gw * g
        self.stem = ResStemIN(cfg, 3, 64)
        self.s1 = ResStage(cfg, 64, 256, stride=1, d=d1, w_b=w_b, num_gs=g)
        self.s2 = ResStage(cfg, 256, 512, stride=2, d=d2, w_b=w_b * 2, num_gs=g)
        self.s3 = ResStage(cfg, 512, 1024, stride=2, d=d3, w_b=w_b * 4, num_gs=g)
        self.s4 = ResStage(cfg, 1024, 2048, stride=2, d=d4, w_b=w_b * 8, num_gs=g)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x3 = self.s3(self.s2(self.s1(self.stem(x))))
        return x3, self.s4(x3)


class ResNet(ResNetTrunk):
    """DELG's pycls ResNet: trunk + `head` (GlobalHead 2048 -> REDUCTION_DIM); forward returns (global, x3)."""

    def _construct(self) -> None:
        super()._construct()
        self.head = GlobalHead(2048, nc=self.cfg.MODEL.HEADS.REDUCTION_DIM)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x3, x4 = super().forward(x)
        return self.head(x4), x3
