"""ViDT's set criterion with VkD's distillation term (`methods/vidt/criterion.py`).

Per decoder output (the last and each auxiliary one) predictions are Hungarian-matched to the targets, then: sigmoid
focal classification (`loss_ce`), L1 and GIoU box losses, the cardinality error (logging), optionally the IoU-aware
and token-label losses. With `distil_tokens=(student, teacher)` VkD adds `loss_distil`: the sum over the four patch
levels, the body [DET] tokens and the decoder [DET] states of smooth-L1 between per-channel standardised student
(already projected by the detector) and teacher tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdrepro_shared.errors import KdReproError
from vkd.vidt.util import box_ops
from vkd.vidt.util.misc import accuracy, get_world_size, is_dist_avail_and_initialized, nested_tensor_from_tensor_list

Indices = list[tuple[torch.Tensor, torch.Tensor]]


def sigmoid_focal_loss(
    inputs: torch.Tensor, targets: torch.Tensor, num_boxes: float, alpha: float = 0.25, gamma: float = 2
) -> torch.Tensor:
    """RetinaNet's focal loss on logits, averaged over dim 1, summed, divided by `num_boxes` (alpha < 0: unweighted)."""
    prob = inputs.sigmoid()
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean(1).sum() / num_boxes


def dice_loss(inputs: torch.Tensor, targets: torch.Tensor, num_boxes: float) -> torch.Tensor:
    """Deformable DETR's soft Dice loss on logits (+1 smoothing), summed over rows and divided by `num_boxes`."""
    prob = inputs.sigmoid().flatten(1)
    targets = targets.flatten(1)
    dice = (2 * (prob * targets).sum(1) + 1) / (prob.sum(-1) + targets.sum(-1) + 1)
    return (1 - dice).sum() / num_boxes


def standardise(tokens: torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation over all rows: (x − mean₀ x) / std₀ x (unbiased std, no epsilon)."""
    return (tokens - tokens.mean(0)) / tokens.std(0)


def distillation_loss(student: dict, teacher: dict) -> torch.Tensor:
    """VkD's token loss: Σ smoothL1(standardise(S), standardise(T)) over 4 patch levels, body [DET] and decoder [DET].

    Student tokens arrive flattened and projected (rows (b, y, x), (b, query), (layer, b, query)); the teacher's
    raw tensors (B, C, H, W), (B, Q, C) and (L, B, Q, C) are flattened to the same row order and detached.
    """
    terms = []
    for patch, teacher_patch in zip(student["patch_token"], teacher["patch_token"], strict=True):
        rows = teacher_patch.permute(0, 2, 3, 1).reshape(-1, teacher_patch.shape[1]).detach()
        terms.append(F.smooth_l1_loss(standardise(patch), standardise(rows)))
    for key in ("body_det_token", "neck_det_token"):
        rows = teacher[key].reshape(-1, teacher[key].shape[-1]).detach()
        terms.append(F.smooth_l1_loss(standardise(student[key]), standardise(rows)))
    return sum(terms)


def _src_permutation(indices: Indices) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch index, query index) of every matched prediction."""
    batch = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
    return batch, torch.cat([src for src, _ in indices])


class SetCriterion(nn.Module):
    """Matches predictions to targets, then sums the requested losses (`labels`, `boxes`, `cardinality`, `iouaware`)."""

    LOSSES = ("labels", "cardinality", "boxes", "iouaware")

    def __init__(
        self, num_classes: int, matcher: nn.Module, weight_dict: dict[str, float], losses: list[str], focal_alpha=0.25
    ) -> None:
        super().__init__()
        unknown = [name for name in losses if name not in self.LOSSES]
        if unknown:
            raise KdReproError(f"SetCriterion: unknown losses {unknown}; valid: {', '.join(self.LOSSES)}")
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = weight_dict
        self.losses = losses
        self.focal_alpha = focal_alpha

    def loss_labels(
        self, outputs: dict, targets: list[dict], indices: Indices, num_boxes: float, log: bool = True
    ) -> dict[str, torch.Tensor]:
        """Sigmoid focal loss over one-hot classes (unmatched queries: all zero) × number of queries."""
        logits = outputs["pred_logits"]
        idx = _src_permutation(indices)
        matched_classes = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices, strict=True)])
        classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        classes[idx] = matched_classes
        onehot = torch.zeros(
            (*logits.shape[:2], logits.shape[2] + 1), dtype=logits.dtype, layout=logits.layout, device=logits.device
        )
        onehot.scatter_(2, classes.unsqueeze(-1), 1)
        onehot = onehot[:, :, :-1]
        losses = {
            "loss_ce": sigmoid_focal_loss(logits, onehot, num_boxes, alpha=self.focal_alpha, gamma=2) * logits.shape[1]
        }
        if log:
            losses["class_error"] = 100 - accuracy(logits[idx], matched_classes)[0]
        return losses

    @torch.no_grad()
    def loss_cardinality(
        self, outputs: dict, targets: list[dict], indices: Indices, num_boxes: float
    ) -> dict[str, torch.Tensor]:
        """L1 error between the number of queries whose argmax is not the last class and the target count (logging)."""
        logits = outputs["pred_logits"]
        target_counts = torch.as_tensor([len(t["labels"]) for t in targets], device=logits.device)
        predicted = (logits.argmax(-1) != logits.shape[-1] - 1).sum(1)
        return {"cardinality_error": F.l1_loss(predicted.float(), target_counts.float())}

    def loss_boxes(self, outputs: dict, targets: list[dict], indices: Indices, num_boxes: float) -> dict:
        """L1 on normalised cxcywh boxes and 1 − GIoU of the matched pairs, each summed and divided by `num_boxes`."""
        src = outputs["pred_boxes"][_src_permutation(indices)]
        tgt = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices, strict=True)], dim=0)
        giou = torch.diag(box_ops.generalized_box_iou(box_ops.box_cxcywh_to_xyxy(src), box_ops.box_cxcywh_to_xyxy(tgt)))
        return {
            "loss_bbox": F.l1_loss(src, tgt, reduction="none").sum() / num_boxes,
            "loss_giou": (1 - giou).sum() / num_boxes,
        }

    def loss_iouaware(self, outputs: dict, targets: list[dict], indices: Indices, num_boxes: float) -> dict:
        """BCE between the IoU-aware logits of matched queries and their boxes' IoU with the targets."""
        idx = _src_permutation(indices)
        iou_logits = outputs["pred_ious"][idx].squeeze(1)
        src = outputs["pred_boxes"][idx]
        tgt = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices, strict=True)], dim=0)
        iou = torch.diag(box_ops.box_iou(box_ops.box_cxcywh_to_xyxy(src), box_ops.box_cxcywh_to_xyxy(tgt))[0])
        bce = F.binary_cross_entropy_with_logits(iou_logits, iou, reduction="none")
        return {"loss_iouaware": bce.sum() / num_boxes}

    def loss_tokens(self, enc_tokens: dict, targets: list[dict], num_boxes: float) -> dict[str, torch.Tensor]:
        """Token-label losses: focal and Dice between per-level patch-token logits and pooled instance-class maps."""
        masks = nested_tensor_from_tensor_list([t["masks"] for t in targets]).tensors
        batch, count, height, width = masks.shape
        taken = torch.zeros((batch, height, width), dtype=torch.bool, device=masks.device)
        for j in range(count):  # earlier instances win overlapping pixels
            masks[:, j] &= masks[:, j] ^ taken
            taken |= masks[:, j]
        labels = torch.stack([F.pad(t["labels"], (0, count - len(t["labels"]))) for t in targets])
        class_map = torch.sum(masks * labels[:, :, None, None], dim=1)
        onehot = torch.zeros((batch, height, width, self.num_classes), dtype=torch.float32, device=masks.device)
        onehot.scatter_(-1, class_map.unsqueeze(-1), 1)
        onehot[..., 0] = 1 - onehot[..., 0]  # index 0 flips from background to foreground
        focal = dice = 0
        for level_logits in enc_tokens["pred_logits"]:
            _, h, w, _ = level_logits.shape
            soft = F.adaptive_avg_pool2d(onehot.permute(0, 3, 1, 2), (h, w)).permute(0, 2, 3, 1).flatten(1, 2)
            flat = level_logits.flatten(1, 2)
            focal = focal + sigmoid_focal_loss(flat, soft, num_boxes)
            dice = dice + dice_loss(flat, soft, num_boxes)
        return {"loss_token_focal": focal, "loss_token_dice": dice}

    def get_loss(self, loss: str, outputs: dict, targets: list[dict], indices: Indices, num_boxes: float, **kwargs):
        """One named loss term's dict."""
        method = {
            "labels": self.loss_labels,
            "cardinality": self.loss_cardinality,
            "boxes": self.loss_boxes,
            "iouaware": self.loss_iouaware,
        }[loss]
        return method(outputs, targets, indices, num_boxes, **kwargs)

    def num_boxes(self, targets: list[dict], device: torch.device) -> float:
        """Target boxes per process averaged over all processes, at least 1 (the losses' normaliser)."""
        count = torch.as_tensor([float(sum(len(t["labels"]) for t in targets))], device=device)
        if is_dist_avail_and_initialized():
            torch.distributed.all_reduce(count)
        return torch.clamp(count / get_world_size(), min=1).item()

    def forward(self, outputs: dict, targets: list[dict], distil_tokens: tuple[dict, dict] | None = None) -> dict:
        """Every loss term: the last output's under their names, auxiliary output i's with suffix `_i`."""
        last = {k: v for k, v in outputs.items() if k not in ("aux_outputs", "enc_outputs")}
        indices = self.matcher(last, targets)
        num_boxes = self.num_boxes(targets, next(iter(outputs.values())).device)
        losses: dict[str, torch.Tensor] = {}
        for loss in self.losses:
            losses.update(self.get_loss(loss, outputs, targets, indices, num_boxes))
        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            aux_indices = self.matcher(aux, targets)
            for loss in self.losses:
                kwargs = {"log": False} if loss == "labels" else {}
                terms = self.get_loss(loss, aux, targets, aux_indices, num_boxes, **kwargs)
                losses.update({f"{k}_{i}": v for k, v in terms.items()})
        if "enc_tokens" in outputs:
            losses.update(self.loss_tokens(outputs["enc_tokens"], targets, num_boxes))
        if distil_tokens is not None:
            losses["loss_distil"] = distillation_loss(*distil_tokens)
        return losses
