"""DOLG (Yang et al. 2021, PyTorch re-implementation) as the teacher uses it: the global branch only.

The teacher descriptor is fc_t(GeM_p(f4)) (1024-d); the local branch, the orthogonal fusion and the ArcFace
classifier exist with their weights (the checkpoint holds them and loads strictly) but the forward does not use them.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode

from kdrepro_shared.errors import KdReproError

from .config import load_cfg
from .resnet import GeneralizedMeanPoolingP, ResNet, init_weights

__all__ = ["DOLG", "Arcface", "SpatialAttention2d"]


class SpatialAttention2d(nn.Module):
    """DOLG local attention: 1x1 conv, BN, ReLU, 1x1 conv to one channel, Softplus; weights the L2-normed map."""

    def __init__(self, cfg: CfgNode, in_c: int, act_fn: str = "relu") -> None:
        super().__init__()
        if cfg.MODEL.WITH_MA:
            raise KdReproError("DOLG with MODEL.WITH_MA (ASPP) is not supported; the released DOLG uses WITH_MA False")
        width = cfg.MODEL.S3_DIM
        self.conv1 = nn.Conv2d(in_c, width, 1, 1)
        self.bn = nn.BatchNorm2d(width, eps=cfg.BN.EPS, momentum=cfg.BN.MOM)
        if act_fn.lower() == "relu":
            self.act1: nn.Module = nn.ReLU()
        elif act_fn.lower() in ("leakyrelu", "leaky", "leaky_relu"):
            self.act1 = nn.LeakyReLU()
        else:
            raise KdReproError(f"activation {act_fn!r} is not supported (valid: relu, leaky_relu)")
        self.conv2 = nn.Conv2d(width, 1, 1, 1)
        self.softplus = nn.Softplus(beta=1, threshold=20)
        for conv in (self.conv1, self.conv2):
            conv.apply(lambda m: init_weights(cfg, m))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (attention-weighted normalised map, attention score map)."""
        x = self.bn(self.conv1(x))
        normed = F.normalize(x, p=2, dim=1)
        score = self.softplus(self.conv2(self.act1(x)))
        return score.expand_as(normed) * normed, score


class Arcface(nn.Module):
    """ArcFace classifier of DOLG training (additive angular margin with a running hard-example weight `t`)."""

    def __init__(self, cfg: CfgNode, in_feat: int, num_classes: int) -> None:
        super().__init__()
        self.in_feat = in_feat
        self._num_classes = num_classes
        self._s = cfg.MODEL.HEADS.SCALE
        self._m = cfg.MODEL.HEADS.MARGIN
        self.cos_m = math.cos(self._m)
        self.sin_m = math.sin(self._m)
        self.threshold = math.cos(math.pi - self._m)
        self.mm = math.sin(math.pi - self._m) * self._m
        self.weight = nn.Parameter(torch.empty(num_classes, in_feat))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.register_buffer("t", torch.zeros(1))

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scaled logits with the margin on the target class (DOLG training only; the teacher never calls it)."""
        cos_theta = F.linear(F.normalize(features), F.normalize(self.weight)).clamp(-1, 1)
        target_logit = cos_theta[torch.arange(0, features.size(0)), targets].view(-1, 1)
        sin_theta = torch.sqrt(1.0 - torch.pow(target_logit, 2))
        cos_theta_m = target_logit * self.cos_m - sin_theta * self.sin_m
        mask = cos_theta > cos_theta_m
        final_target_logit = torch.where(target_logit > self.threshold, cos_theta_m, target_logit - self.mm)
        hard_example = cos_theta[mask]
        with torch.no_grad():
            self.t = target_logit.mean() * 0.01 + (1 - 0.01) * self.t
        cos_theta[mask] = hard_example * (self.t + hard_example)
        cos_theta.scatter_(1, targets.view(-1, 1).long(), final_target_logit)
        return cos_theta * self._s

    def extra_repr(self) -> str:
        return f"in_features={self.in_feat}, num_classes={self._num_classes}, scale={self._s}, margin={self._m}"


class DOLG(nn.Module):
    """DOLG with all its parts (640 state_dict entries); forward = fc_t(GeM_p(stage-4 map)), the 1024-d global part."""

    def __init__(self) -> None:
        super().__init__()
        cfg = self.cfg = load_cfg()
        self.pool_l = nn.AdaptiveAvgPool2d((1, 1))
        self.pool_g = GeneralizedMeanPoolingP(norm=3.0)
        self.fc_t = nn.Linear(cfg.MODEL.S4_DIM, cfg.MODEL.S3_DIM, bias=True)
        self.fc = nn.Linear(cfg.MODEL.S4_DIM, cfg.MODEL.HEADS.REDUCTION_DIM, bias=True)
        self.globalmodel = ResNet(cfg)
        self.localmodel = SpatialAttention2d(cfg, cfg.MODEL.S3_DIM)
        self.desc_cls = Arcface(cfg, cfg.MODEL.HEADS.REDUCTION_DIM, cfg.MODEL.NUM_CLASSES)
        self.embed_dim = cfg.MODEL.S3_DIM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, f4 = self.globalmodel(x)
        return self.fc_t(self.pool_g(f4).view(f4.size(0), self.cfg.MODEL.S4_DIM))
