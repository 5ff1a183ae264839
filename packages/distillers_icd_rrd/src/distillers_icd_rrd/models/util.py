"""Auxiliary modules of the original `models/util.py`: regressors, connectors, FT paraphraser/translator, embeddings.

Attribute names follow the original so that `state_dict` keys match (e.g. `conv.weight`, `encoder.0.weight`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from kdrepro_shared.errors import KdReproError

Shape = Sequence[int]


def _ft_encoder(in_channel: int, out_channel: int, use_bn: bool) -> nn.Sequential:
    """Three 3×3 conv stages (C→C, C→o, o→o) each followed by BN (or an empty slot) and LeakyReLU(0.1)."""
    return nn.Sequential(
        nn.Conv2d(in_channel, in_channel, 3, 1, 1),
        nn.BatchNorm2d(in_channel) if use_bn else nn.Sequential(),
        nn.LeakyReLU(0.1, inplace=True),
        nn.Conv2d(in_channel, out_channel, 3, 1, 1),
        nn.BatchNorm2d(out_channel) if use_bn else nn.Sequential(),
        nn.LeakyReLU(0.1, inplace=True),
        nn.Conv2d(out_channel, out_channel, 3, 1, 1),
        nn.BatchNorm2d(out_channel) if use_bn else nn.Sequential(),
        nn.LeakyReLU(0.1, inplace=True),
    )


class Paraphraser(nn.Module):
    """FT paraphraser (Kim et al., NeurIPS 2018): a conv autoencoder on the teacher map whose code is the "factor"."""

    def __init__(self, t_shape: Shape, k: float = 0.5, use_bn: bool = False) -> None:
        super().__init__()
        in_channel = t_shape[1]
        out_channel = int(t_shape[1] * k)
        self.encoder = _ft_encoder(in_channel, out_channel, use_bn)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(out_channel, out_channel, 3, 1, 1),
            nn.BatchNorm2d(out_channel) if use_bn else nn.Sequential(),
            nn.LeakyReLU(0.1, inplace=True),
            nn.ConvTranspose2d(out_channel, in_channel, 3, 1, 1),
            nn.BatchNorm2d(in_channel) if use_bn else nn.Sequential(),
            nn.LeakyReLU(0.1, inplace=True),
            nn.ConvTranspose2d(in_channel, in_channel, 3, 1, 1),
            nn.BatchNorm2d(in_channel) if use_bn else nn.Sequential(),
            nn.LeakyReLU(0.1, inplace=True),
        )

    def forward(self, f_s: torch.Tensor, is_factor: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Return the factor only (`is_factor=True`), else (factor, reconstruction)."""
        factor = self.encoder(f_s)
        if is_factor:
            return factor
        rec = self.decoder(factor)
        return factor, rec


class Translator(nn.Module):
    """FT translator: maps the student map to a factor with int(k·t_C) channels (BN on by default)."""

    def __init__(self, s_shape: Shape, t_shape: Shape, k: float = 0.5, use_bn: bool = True) -> None:
        super().__init__()
        self.encoder = _ft_encoder(s_shape[1], int(t_shape[1] * k), use_bn)

    def forward(self, f_s: torch.Tensor) -> torch.Tensor:
        """Student factor."""
        return self.encoder(f_s)


class ConvReg(nn.Module):
    """FitNet regressor: conv (stride-2, transposed or valid, picked from the spatial sizes) → BN (→ ReLU)."""

    def __init__(self, s_shape: Shape, t_shape: Shape, use_relu: bool = True) -> None:
        super().__init__()
        self.use_relu = use_relu
        _, s_c, s_h, s_w = s_shape
        _, t_c, t_h, t_w = t_shape
        if s_h == 2 * t_h:
            self.conv = nn.Conv2d(s_c, t_c, kernel_size=3, stride=2, padding=1)
        elif s_h * 2 == t_h:
            self.conv = nn.ConvTranspose2d(s_c, t_c, kernel_size=4, stride=2, padding=1)
        elif s_h >= t_h:
            self.conv = nn.Conv2d(s_c, t_c, kernel_size=(1 + s_h - t_h, 1 + s_w - t_w))
        else:
            # The original raises `NotImplemented(...)`, itself a TypeError; this says what was meant.
            raise KdReproError(f"ConvReg cannot map a student map of size {s_h} to a larger teacher map of size {t_h}")
        self.bn = nn.BatchNorm2d(t_c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Regress the student map onto the teacher's shape."""
        x = self.bn(self.conv(x))
        return self.relu(x) if self.use_relu else x


class Connector(nn.Module):
    """AB connectors (Heo et al., AAAI 2019): identity where shapes agree, else ConvReg without ReLU, one per layer."""

    def __init__(self, s_shapes: Sequence[Shape], t_shapes: Sequence[Shape]) -> None:
        super().__init__()
        self.s_shapes = s_shapes
        self.t_shapes = t_shapes
        self.connectors = nn.ModuleList(self._make_conenctors(s_shapes, t_shapes))

    @staticmethod
    def _make_conenctors(s_shapes: Sequence[Shape], t_shapes: Sequence[Shape]) -> list[nn.Module]:
        """One connector per (student, teacher) layer pair (the original's spelling of the name is kept)."""
        assert len(s_shapes) == len(t_shapes), "unequal length of feat list"
        return [
            nn.Sequential() if s[1] == t[1] and s[2] == t[2] else ConvReg(s, t, use_relu=False)
            for s, t in zip(s_shapes, t_shapes, strict=True)
        ]

    def forward(self, g_s: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Apply connector i to student map i."""
        return [self.connectors[i](g_s[i]) for i in range(len(g_s))]


class ConnectorV2(nn.Module):
    """OFD connectors (Heo et al., ICCV 2019): 1×1 conv (He-normal init) + BN per layer; unused by the train script."""

    def __init__(self, s_shapes: Sequence[Shape], t_shapes: Sequence[Shape]) -> None:
        super().__init__()
        self.s_shapes = s_shapes
        self.t_shapes = t_shapes
        self.connectors = nn.ModuleList(self._make_conenctors(s_shapes, t_shapes))

    def _make_conenctors(self, s_shapes: Sequence[Shape], t_shapes: Sequence[Shape]) -> nn.ModuleList:
        """One 1×1 conv + BN per layer pair, from student to teacher channels."""
        assert len(s_shapes) == len(t_shapes), "unequal length of feat list"
        return nn.ModuleList(
            [self._build_feature_connector(t[1], s[1]) for t, s in zip(t_shapes, s_shapes, strict=True)]
        )

    @staticmethod
    def _build_feature_connector(t_channel: int, s_channel: int) -> nn.Sequential:
        """Conv weight ~ N(0, 2/(k·k·out)), BN weight 1 and bias 0."""
        conv = nn.Conv2d(s_channel, t_channel, kernel_size=1, stride=1, padding=0, bias=False)
        bn = nn.BatchNorm2d(t_channel)
        n = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
        conv.weight.data.normal_(0, math.sqrt(2.0 / n))
        bn.weight.data.fill_(1)
        bn.bias.data.zero_()
        return nn.Sequential(conv, bn)

    def forward(self, g_s: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Apply connector i to student map i."""
        return [self.connectors[i](g_s[i]) for i in range(len(g_s))]


class Regress(nn.Module):
    """Linear regression for hints: flatten → Linear → ReLU."""

    def __init__(self, dim_in: int = 1024, dim_out: int = 1024) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Regressed, rectified features."""
        return self.relu(self.linear(x.view(x.shape[0], -1)))


class Normalize(nn.Module):
    """Divide each row by its L_p norm (no eps, as in the original; shared by the CRD/RRD/ICD heads)."""

    def __init__(self, power: int = 2) -> None:
        super().__init__()
        self.power = power

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Row-normalised x."""
        norm = x.pow(self.power).sum(1, keepdim=True).pow(1.0 / self.power)
        return x.div(norm)


class Embed(nn.Module):
    """CRD/RRD projection head: flatten → `linear` → L2 normalise (keys `linear.weight`, `linear.bias`)."""

    def __init__(self, dim_in: int = 1024, dim_out: int = 128) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)
        self.l2norm = Normalize(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm embedding."""
        return self.l2norm(self.linear(x.view(x.shape[0], -1)))


class LinearEmbed(nn.Module):
    """CC projection head: flatten → `linear`, no normalisation."""

    def __init__(self, dim_in: int = 1024, dim_out: int = 128) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Linear embedding."""
        return self.linear(x.view(x.shape[0], -1))


class MLPEmbed(nn.Module):
    """Non-linear head: Linear(d, 2·o) → ReLU → Linear(2·o, o) → L2 normalise."""

    def __init__(self, dim_in: int = 1024, dim_out: int = 128) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim_in, 2 * dim_out)
        self.relu = nn.ReLU(inplace=True)
        self.linear2 = nn.Linear(2 * dim_out, dim_out)
        self.l2norm = Normalize(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm MLP embedding."""
        x = self.relu(self.linear1(x.view(x.shape[0], -1)))
        return self.l2norm(self.linear2(x))


class Flatten(nn.Module):
    """Flatten all but the batch dimension."""

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """(B, ...) → (B, -1)."""
        return feat.view(feat.size(0), -1)


# layer → (pool size, channels) of the original PoolEmbed (sized for WRN-style 16/32/64-channel maps)
_POOL_EMBED_LAYERS = {0: (8, 16), 1: (8, 16), 2: (6, 32), 3: (4, 64), 4: (1, 64)}


class PoolEmbed(nn.Module):
    """Adaptive pool (layers 0–3) → flatten → Linear → L2 normalise, with the original's per-layer sizes."""

    def __init__(self, layer: int = 0, dim_out: int = 128, pool_type: str = "avg") -> None:
        super().__init__()
        if layer not in _POOL_EMBED_LAYERS:
            raise KdReproError(f"PoolEmbed supports layers {sorted(_POOL_EMBED_LAYERS)}, got {layer}")
        pool_size, n_channels = _POOL_EMBED_LAYERS[layer]
        self.embed = nn.Sequential()
        if layer <= 3:
            if pool_type == "max":
                self.embed.add_module("MaxPool", nn.AdaptiveMaxPool2d((pool_size, pool_size)))
            elif pool_type == "avg":
                self.embed.add_module("AvgPool", nn.AdaptiveAvgPool2d((pool_size, pool_size)))
        self.embed.add_module("Flatten", Flatten())
        self.embed.add_module("Linear", nn.Linear(n_channels * pool_size * pool_size, dim_out))
        self.embed.add_module("Normalize", Normalize(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm pooled embedding."""
        return self.embed(x)
