"""The RegNetY-160 teacher of VkD classification, built by timm, and the pooled feature the VkD loss matches.

The original's `models/regnet.py` is a key-identical copy of timm's RegNet (`REGNET_MODELS`, merged into `MODELS`
but never used as the teacher); the teacher itself comes from `timm.create_model(args.teacher, pretrained=True)`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import timm
import torch
from torch import nn

from kdrepro_shared import checkpoints

__all__ = ["DEIT_TEACHER", "REGNET_MODELS", "create_teacher", "forward_teacher", "pool_features", "regnety_160"]

logger = logging.getLogger(__name__)

# Registry name of the "original DeiT teacher" (`regnety_160-a5fe301d.pth` = timm `regnety_160.deit_in1k`).
DEIT_TEACHER = "deit/regnety_160"


def regnety_160(**kwargs: Any) -> nn.Module:
    """RegNetY-16GF from timm, randomly initialised (the original's `models/regnet.py` copy has the same keys)."""
    return timm.create_model("regnety_160", pretrained=False, **kwargs)


REGNET_MODELS: dict[str, Callable[..., nn.Module]] = {"regnety_160": regnety_160}


def create_teacher(
    name: str = "regnety_160", teacher_path: str | os.PathLike[str] | None = None, pretrained: bool = True
) -> nn.Module:
    """Build the frozen, eval-mode teacher `timm.create_model(name)`, strictly loading `teacher_path` if given.

    `teacher_path` is a file, URL or registry name (e.g. `DEIT_TEACHER`) holding `{'model': state_dict}` or the
    state dict itself. Without it the timm Hugging Face weights are used, as in the original (needs network).
    """
    teacher = timm.create_model(name, pretrained=pretrained and teacher_path is None)
    for p in teacher.parameters():
        p.requires_grad = False
    if teacher_path is not None:
        state = checkpoints.load(checkpoints.fetch(teacher_path))
        teacher.load_state_dict(state.get("model", state))
    elif pretrained:
        logger.warning("Using the default Hugging Face weights for the teacher (%s).", name)
    return teacher.eval()


def pool_features(feature_map: torch.Tensor) -> torch.Tensor:
    """Average a (B, C, H, W) teacher feature map over its spatial positions → (B, C)."""
    b, c, h, w = feature_map.shape
    return feature_map.reshape(b, c, h * w).mean(-1)


@torch.no_grad()
def forward_teacher(teacher: nn.Module, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the teacher's spatially pooled final features (B, C) and its logits (B, classes), without grad."""
    feature_map = teacher.forward_features(samples)
    return pool_features(feature_map), teacher.forward_head(feature_map)
