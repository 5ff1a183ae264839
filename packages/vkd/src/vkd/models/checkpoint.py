"""Load a released VkD student checkpoint and report key mismatches (the original's `strict=False` hides them)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kdrepro_shared import checkpoints
from kdrepro_shared.errors import CheckpointError

__all__ = ["KeyReport", "StudentLoadReport", "load_student_checkpoint"]

logger = logging.getLogger(__name__)

_DDP_PREFIX = "module."
_PROJECTOR_PREFIX = "projector."
_MAX_KEYS_SHOWN = 8


@dataclass(frozen=True)
class KeyReport:
    """Model keys absent from a checkpoint and checkpoint keys the model lacks (what `strict=False` would hide)."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every model key was loaded and no checkpoint key was left over."""
        return not (self.missing or self.unexpected)

    def summary(self) -> str:
        """One line naming the mismatched keys (at most a few of each)."""
        return (
            f"{len(self.missing)} missing [{_show(self.missing)}], "
            f"{len(self.unexpected)} unexpected [{_show(self.unexpected)}]"
        )


def _show(keys: tuple[str, ...]) -> str:
    """The first few keys, then how many more."""
    more = f", … (+{len(keys) - _MAX_KEYS_SHOWN})" if len(keys) > _MAX_KEYS_SHOWN else ""
    return ", ".join(keys[:_MAX_KEYS_SHOWN]) + more


@dataclass(frozen=True)
class StudentLoadReport(KeyReport):
    """A `KeyReport` plus the projector keys dropped from the checkpoint."""

    dropped_projector: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line naming the mismatched keys and counting the dropped projector keys."""
        return f"{super().summary()}, {len(self.dropped_projector)} projector keys dropped"


def _student_state(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Unwrap `model` then `student` as the original does, and strip the DDP `module.` prefix."""
    checkpoint = checkpoint.get("model", checkpoint)
    state = checkpoint.get("student", checkpoint)
    return {k.removeprefix(_DDP_PREFIX): v for k, v in state.items()}


def load_student_checkpoint(
    model: nn.Module, checkpoint: str | os.PathLike[str] | Mapping[str, Any], strict: bool = True
) -> StudentLoadReport:
    """Load a VkD checkpoint (file, registry name or loaded dict) into an unwrapped student and return the report.

    Projector keys are dropped when `model` has no `projector`. With `strict`, a missing or unexpected key raises
    `CheckpointError`; otherwise it is logged as a warning.
    """
    if not isinstance(checkpoint, Mapping):
        checkpoint = checkpoints.load(checkpoints.fetch(checkpoint))
    state = _student_state(checkpoint)
    dropped: tuple[str, ...] = ()
    if not hasattr(model, "projector"):
        dropped = tuple(k for k in state if k.startswith(_PROJECTOR_PREFIX))
        state = {k: v for k, v in state.items() if not k.startswith(_PROJECTOR_PREFIX)}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise CheckpointError(f"student checkpoint does not fit the model: {' '.join(str(err).split())}") from None
    report = StudentLoadReport(tuple(result.missing_keys), tuple(result.unexpected_keys), dropped)
    if not report.ok:
        if strict:
            raise CheckpointError(f"student checkpoint keys do not match the model: {report.summary()}")
        logger.warning("student checkpoint loaded with mismatched keys: %s", report.summary())
    return report
