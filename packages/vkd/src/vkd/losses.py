"""The VkD classification loss (`engine.train_one_epoch`): CE + γ·KL(dist head ‖ teacher) + α·smoothL1(P·z̄_s, LN(z̄_t)).

z̄_s is the mean of the student's final (normed) patch tokens, P the orthogonal projector, z̄_t the spatially pooled
teacher feature map standardised per sample (LayerNorm without affine). The KL term uses the distillation head and
T = 1; the CE term uses the cls head. The caller owns autocast, backward and the optimizer step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from vkd.models.regnet import forward_teacher

__all__ = ["VkDLosses", "bce_targets", "build_criterion", "kl_loss", "representation_loss", "vkd_loss"]


class VkDLosses(NamedTuple):
    """The total loss and its three logged terms (`xe_loss`, `repr_distill_loss`, `kl_loss` in the train CSV)."""

    loss: torch.Tensor
    xe_loss: torch.Tensor
    repr_distill_loss: torch.Tensor
    kl_loss: torch.Tensor


def build_criterion(mixup_active: bool, smoothing: float, bce_loss: bool) -> nn.Module:
    """The original's CE choice: SoftTargetCE with mixup, else label-smoothing CE or CE; `--bce-loss` overrides."""
    if bce_loss:
        return nn.BCEWithLogitsLoss()
    if mixup_active:
        return SoftTargetCrossEntropy()
    if smoothing:
        return LabelSmoothingCrossEntropy(smoothing=smoothing)
    return nn.CrossEntropyLoss()


def bce_targets(targets: torch.Tensor) -> torch.Tensor:
    """`--bce-loss` targets: every positive (soft) target becomes 1, as in the original (with mixup: all ones)."""
    return targets.gt(0.0).type(targets.dtype)


def representation_loss(
    patch_tokens: torch.Tensor, teacher_pooled: torch.Tensor, projector: nn.Module, alpha: float = 1.0
) -> torch.Tensor:
    """α·smoothL1(projector(mean of patch tokens), layer_norm(pooled teacher feature)), mean over B×C_t."""
    student = projector(patch_tokens.mean(1))
    teacher = F.layer_norm(teacher_pooled, (teacher_pooled.shape[1],))
    return alpha * F.smooth_l1_loss(student, teacher)


def kl_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    gamma: float = 1.0,
    T: float = 1.0,  # noqa: N803
) -> torch.Tensor:
    """γ·T²·KL(softmax(teacher/T) ‖ softmax(student/T)), summed over classes and averaged over the batch."""
    log_p = F.log_softmax(student_logits / T, dim=-1)
    q = F.softmax(teacher_logits / T, dim=-1)
    return gamma * F.kl_div(log_p, q, reduction="batchmean") * T * T


def vkd_loss(
    student: nn.Module,
    teacher: nn.Module,
    samples: torch.Tensor,
    targets: torch.Tensor,
    criterion: nn.Module,
    *,
    alpha: float = 1.0,
    gamma: float = 1.0,
    bce_loss: bool = False,
) -> VkDLosses:
    """Run teacher (no grad) and student (the unwrapped module with `.projector`) and return the VkD loss terms.

    `targets` are the (mixed) targets; `bce_loss` binarises them first. The original only runs with α > 0 and
    γ > 0 (other settings crash there with NameError/TypeError), so other values are rejected.
    """
    if not (alpha > 0 and gamma > 0):
        raise ValueError(f"VkD needs alpha > 0 and gamma > 0 (got alpha={alpha}, gamma={gamma}); the original crashes")
    if bce_loss:
        targets = bce_targets(targets)
    teacher_pooled, teacher_logits = forward_teacher(teacher, samples)
    z_cls, z_dist, patch_tokens = student.forward_features(samples)
    logits = student.head(z_cls)
    logits_dist = student.head_dist(z_dist)
    repr_distill = representation_loss(patch_tokens, teacher_pooled, student.projector, alpha)
    kl = kl_loss(logits_dist, teacher_logits, gamma)
    xe = criterion(logits, targets)
    return VkDLosses(xe + kl + repr_distill, xe, repr_distill, kl)
