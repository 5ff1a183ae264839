"""yacs configuration of DOLG: the pycls defaults plus DOLG's channel widths and ASPP switch."""

from __future__ import annotations

from yacs.config import CfgNode

from whiten_mtd.models.delg import config as pycls_config

__all__ = ["YAML_NAME", "default_cfg", "load_cfg"]

YAML_NAME = "dolg_config.yaml"


def default_cfg() -> CfgNode:
    """pycls defaults with MODEL.S4_DIM 2048, S3_DIM 1024, S2_DIM 512 and MODEL.WITH_MA (ASPP) False."""
    cfg = pycls_config.default_cfg()
    cfg.MODEL.S4_DIM = 2048
    cfg.MODEL.S3_DIM = 1024
    cfg.MODEL.S2_DIM = 512
    cfg.MODEL.WITH_MA = False
    return cfg


def load_cfg() -> CfgNode:
    """The frozen DOLG config: defaults merged with the shipped `dolg_config.yaml`."""
    return pycls_config.load_cfg(__package__, YAML_NAME, base=default_cfg())
