"""yacs configuration of the pycls ResNets (DELG/DOLG re-implementations): defaults plus a shipped YAML per model.

Unlike the original's module-global config, every model gets its own frozen copy, so several teachers can be
built in one process.
"""

from __future__ import annotations

from importlib import resources

from yacs.config import CfgNode

__all__ = ["default_cfg", "load_cfg"]


def default_cfg() -> CfgNode:
    """The pycls defaults the DELG/DOLG models read (model, heads, ResNet, BN and memory options)."""
    cfg = CfgNode()
    cfg.MODEL = CfgNode()
    cfg.MODEL.TYPE = ""
    cfg.MODEL.DEPTH = 0
    cfg.MODEL.NUM_CLASSES = 10
    cfg.MODEL.LOSSES = CfgNode()
    cfg.MODEL.LOSSES.NAME = "cross_entropy"
    cfg.MODEL.HEADS = CfgNode()
    cfg.MODEL.HEADS.NAME = "LinearHead"
    cfg.MODEL.HEADS.NUM_CLASSES = 1000
    cfg.MODEL.HEADS.IN_FEAT = 2048
    cfg.MODEL.HEADS.REDUCTION_DIM = 512
    cfg.MODEL.HEADS.POOL_LAYER = "avgpool"
    cfg.MODEL.HEADS.CLS_LAYER = "linear"
    cfg.MODEL.HEADS.MARGIN = 0.15
    cfg.MODEL.HEADS.SCALE = 128
    cfg.RESNET = CfgNode()
    cfg.RESNET.TRANS_FUN = "basic_transform"
    cfg.RESNET.NUM_GROUPS = 1
    cfg.RESNET.WIDTH_PER_GROUP = 64
    cfg.RESNET.STRIDE_1X1 = True
    cfg.BN = CfgNode()
    cfg.BN.EPS = 1e-5
    cfg.BN.MOM = 0.1
    cfg.BN.USE_PRECISE_STATS = False
    cfg.BN.NUM_SAMPLES_PRECISE = 1024
    cfg.BN.ZERO_INIT_FINAL_GAMMA = False
    cfg.BN.USE_CUSTOM_WEIGHT_DECAY = False
    cfg.BN.CUSTOM_WEIGHT_DECAY = 0.0
    cfg.MEM = CfgNode()
    cfg.MEM.RELU_INPLACE = True
    return cfg


def load_cfg(package: str, yaml_name: str, base: CfgNode | None = None) -> CfgNode:
    """Merge the YAML file `yaml_name` shipped in `package` into `base` (default: `default_cfg()`) and freeze it."""
    cfg = default_cfg() if base is None else base
    text = resources.files(package).joinpath(yaml_name).read_text(encoding="utf-8")
    cfg.merge_from_other_cfg(cfg.load_cfg(text))
    cfg.freeze()
    return cfg
