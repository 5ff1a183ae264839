"""Released ViDT / VkD detection checkpoints: read them (their `args` is a pickled argparse.Namespace) and load them.

Upstream ViDT teachers (`vidt/vidt_{nano,tiny,small,base}_{50,150}`) hold `{'model', ...}` with 485 keys for
Swin-nano (no projectors); VkD students (`vkd/vidt_{nano,tiny}`) hold `{'model', 'optimizer', 'lr_scheduler',
'epoch', 'args'}` whose model has 509 keys incl. the 24 projector keys. Both contain the 42 duplicated
`transformer.decoder.bbox_embed.*` keys that alias `bbox_embed.*` (built with `--with_box_refine True`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from kdrepro_shared import checkpoints
from kdrepro_shared.errors import CheckpointError
from vkd.models.checkpoint import KeyReport

__all__ = ["TRUSTED_KIND", "DetectorLoadReport", "load_detector_state", "load_teacher_checkpoint", "read_checkpoint"]

TRUSTED_KIND = "ViDT/VkD detection checkpoint.pth (holds args: argparse.Namespace)"


class DetectorLoadReport(KeyReport):
    """Key mismatches of a detector state_dict load."""


def read_checkpoint(source: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ViDT/VkD checkpoint from a path, URL or registry name (`vidt/vidt_base_150`, `vkd/vidt_nano`)."""
    path = checkpoints.fetch(source)
    state = checkpoints.load(path, weights_only=False, trusted_legacy=TRUSTED_KIND)
    if not isinstance(state, Mapping) or "model" not in state:
        raise CheckpointError(f"{path} has no 'model' entry; expected a ViDT/VkD checkpoint.pth")
    return dict(state)


def load_detector_state(model: nn.Module, state: Mapping[str, torch.Tensor], strict: bool = True) -> DetectorLoadReport:
    """Load a detector state_dict; with `strict` any missing/unexpected key raises a one-line CheckpointError."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint does not fit the detector: {' '.join(str(err).split())[:400]}") from None
    report = DetectorLoadReport(tuple(result.missing_keys), tuple(result.unexpected_keys))
    if strict and not report.ok:
        raise CheckpointError(f"checkpoint keys do not match the detector (check --backbone_name/--distil_model, "
                              f"--aux_loss and --with_box_refine): {report.summary()}")  # fmt: skip
    return report


def load_teacher_checkpoint(teacher: nn.Module, source: str | os.PathLike[str]) -> DetectorLoadReport:
    """Load `--distil_model_path` (path, URL or registry name) strictly into the teacher, as the original does."""
    return load_detector_state(teacher, read_checkpoint(source)["model"], strict=True)
