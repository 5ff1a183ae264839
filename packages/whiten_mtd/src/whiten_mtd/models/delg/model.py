"""DELG global descriptor (Cao et al. 2020, pycls re-implementation): the `globalmodel` ResNet with its GeM head."""

from __future__ import annotations

import torch
from torch import nn

from .config import load_cfg
from .resnet import ResNet

__all__ = ["R50_DELG", "R101_DELG"]


class _DELG(nn.Module):
    """`globalmodel` = pycls ResNet + GlobalHead; forward returns the REDUCTION_DIM global descriptor only."""

    yaml_name = ""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = load_cfg(__package__, self.yaml_name)
        self.globalmodel = ResNet(self.cfg)
        self.embed_dim = self.cfg.MODEL.HEADS.REDUCTION_DIM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.globalmodel(x)[0]


class R101_DELG(_DELG):  # noqa: N801 (the original class name)
    """DELG ResNet-101, 512-d global descriptor."""

    yaml_name = "r101_delg_config.yaml"


class R50_DELG(_DELG):  # noqa: N801 (the original class name)
    """DELG ResNet-50, 512-d global descriptor."""

    yaml_name = "r50_delg_config.yaml"
