"""Model builders of ViDT as VkD uses it (`methods/__init__.py`): `build_model(args, is_teacher=False)`.

The student comes with its criterion and post-processors; VkD's projectors are attached separately
(`attach_projectors`, as `vidt/main.py` does) and the teacher is built by `build_distil_model`.
"""

from __future__ import annotations

import argparse
from typing import Any

from torch import nn

from vkd.vidt.methods.vidt.checkpoint import (
    DetectorLoadReport,
    load_detector_state,
    load_teacher_checkpoint,
    read_checkpoint,
)
from vkd.vidt.methods.vidt.detector import (
    NUM_CLASSES,
    PROJECTOR_NAMES,
    TEACHERS,
    Detector,
    OrthogonalLinear,
    attach_projectors,
    build,
    build_teacher,
)

__all__ = [
    "PROJECTOR_NAMES",
    "TEACHERS",
    "Detector",
    "DetectorLoadReport",
    "OrthogonalLinear",
    "attach_projectors",
    "build_distil_model",
    "build_model",
    "build_weight_dict",
    "load_detector_state",
    "load_teacher_checkpoint",
    "read_checkpoint",
]


def build_weight_dict(args: argparse.Namespace) -> dict[str, float]:
    """Loss weights: ce/bbox/giou (+ iou-aware, token-label, distil), copied for `_0.._{L-1}` and `_enc` with aux."""
    weights = {"loss_ce": args.cls_loss_coef, "loss_bbox": args.bbox_loss_coef, "loss_giou": args.giou_loss_coef}
    if args.iou_aware:
        weights["loss_iouaware"] = args.iouaware_loss_coef
    if args.token_label:
        weights["loss_token_focal"] = args.token_loss_coef
        weights["loss_token_dice"] = args.token_loss_coef
    if args.distil_model is not None:
        weights["loss_distil"] = args.distil_loss_coef
    if args.aux_loss:
        aux: dict[str, float] = {}
        for i in range(args.dec_layers):
            aux.update({f"{k}_{i}": v for k, v in weights.items()})
        aux.update({f"{k}_enc": v for k, v in weights.items()})
        weights.update(aux)
    return weights


def build_model(args: argparse.Namespace, is_teacher: bool = False) -> Any:
    """`(model, criterion, {'bbox': PostProcess})` for the student, or the teacher `Detector` with `is_teacher`."""
    if is_teacher:
        return build_teacher(args)
    from vkd.vidt.methods.vidt.criterion import SetCriterion  # noqa: PLC0415 -- losses only for the student
    from vkd.vidt.methods.vidt.matcher import build_matcher  # noqa: PLC0415
    from vkd.vidt.methods.vidt.postprocessor import PostProcess  # noqa: PLC0415

    model = build(args)
    losses = ["labels", "boxes", "cardinality"]
    if args.iou_aware:
        losses.append("iouaware")
    criterion = SetCriterion(
        NUM_CLASSES[args.dataset_file], build_matcher(args), build_weight_dict(args), losses,
        focal_alpha=args.focal_alpha,
    )  # fmt: skip
    criterion.to(args.device)
    return model, criterion, {"bbox": PostProcess(args.dataset_file)}


def build_distil_model(args: argparse.Namespace) -> nn.Module:
    """The `--distil_model` teacher (weights not loaded: see `load_teacher_checkpoint`), without projectors."""
    return build_model(args, is_teacher=True)
