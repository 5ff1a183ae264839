"""VkD models: DeiT students (`deit`), the timm RegNetY-160 teacher (`regnet`), the orthogonal projector.

`MODELS` is the original's `--student-model` table: `DEIT_MODELS` ∪ `REGNET_MODELS`.
"""

from collections.abc import Callable

from torch import nn

from .checkpoint import StudentLoadReport, load_student_checkpoint
from .deit import DEIT_MODELS, DistilledVisionTransformer, conv_embed
from .projector import PROJECTOR_PARAM, attach_projector, build_projector, exclude_projector_from_weight_decay
from .regnet import DEIT_TEACHER, REGNET_MODELS, create_teacher, forward_teacher, pool_features

MODELS: dict[str, Callable[..., nn.Module]] = {**DEIT_MODELS, **REGNET_MODELS}

__all__ = [
    "DEIT_MODELS",
    "DEIT_TEACHER",
    "MODELS",
    "PROJECTOR_PARAM",
    "REGNET_MODELS",
    "DistilledVisionTransformer",
    "StudentLoadReport",
    "attach_projector",
    "build_projector",
    "conv_embed",
    "create_teacher",
    "exclude_projector_from_weight_decay",
    "forward_teacher",
    "load_student_checkpoint",
    "pool_features",
]
