"""The orthogonal projector of VkD classification (`train.py`): a bias-free Linear under torch's orthogonal map.

For the non-square student→teacher map torch uses the Householder parametrisation, whose column signs are the
integer-cast diagonal of the trainable `original` tensor. The original puts `original` in the AdamW weight-decay
group, so the first step shrinks that diagonal from −1 to −0.999975, `int()` turns it into 0 and the projector is
the zero matrix from then on (the representation loss becomes a constant). `exclude_projector_from_weight_decay`
is the opt-in fix (`--fix-projector-decay`); the default keeps the original behaviour.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrizations

__all__ = ["PROJECTOR_PARAM", "attach_projector", "build_projector", "exclude_projector_from_weight_decay"]

# Name of the projector's trainable tensor inside a student that carries the projector as `student.projector`.
PROJECTOR_PARAM = "projector.parametrizations.weight.original"


def build_projector(in_features: int, out_features: int) -> nn.Linear:
    """Return `orthogonal(Linear(in_features, out_features, bias=False))` (default map, trivialisation on)."""
    return parametrizations.orthogonal(nn.Linear(in_features, out_features, bias=False))


def attach_projector(student: nn.Module, teacher_num_features: int) -> nn.Linear:
    """Attach the projector as `student.projector` (student.num_features → teacher features) and return it."""
    student.projector = build_projector(student.num_features, teacher_num_features)
    return student.projector


def exclude_projector_from_weight_decay(optimizer: torch.optim.Optimizer, projector: nn.Module) -> int:
    """Move the projector's parameters from weight-decayed groups to a wd-0 group; return how many moved.

    Call before the first `optimizer.step()`. This is the opt-in fix for the projector collapse, not the original.
    """
    if optimizer.state:
        raise RuntimeError("exclude_projector_from_weight_decay must be called before the first optimizer step")
    targets = {id(p) for p in projector.parameters()}
    moved: list[torch.Tensor] = []
    for group in optimizer.param_groups:
        if group["weight_decay"] == 0:
            continue
        moved += [p for p in group["params"] if id(p) in targets]
        group["params"] = [p for p in group["params"] if id(p) not in targets]
    if not moved:
        return 0
    no_decay = next((g for g in optimizer.param_groups if g["weight_decay"] == 0), None)
    if no_decay is None:
        optimizer.add_param_group({"params": moved, "weight_decay": 0.0})
    else:
        no_decay["params"].extend(moved)
    return len(moved)
