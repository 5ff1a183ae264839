"""Hungarian matching of predictions to ground-truth boxes with the focal classification cost (Deformable DETR)."""

from __future__ import annotations

import argparse

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from kdrepro_shared.errors import KdReproError
from vkd.vidt.util.box_ops import box_cxcywh_to_xyxy, generalized_box_iou

FOCAL_ALPHA = 0.25  # hard-coded in the matcher (independent of --focal_alpha), as in the original
FOCAL_GAMMA = 2.0


class HungarianMatcher(nn.Module):
    """One-to-one assignment minimising cost_bbox·L1 + cost_class·focal + cost_giou·(−GIoU), per image (scipy)."""

    def __init__(self, cost_class: float = 1, cost_bbox: float = 1, cost_giou: float = 1) -> None:
        super().__init__()
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise KdReproError("HungarianMatcher: at least one of --set_cost_class/bbox/giou must be non-zero")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou

    @torch.no_grad()
    def forward(self, outputs: dict, targets: list[dict]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image, (prediction indices, target indices) of the optimal matching, both int64 and in scipy's order."""
        batch, queries = outputs["pred_logits"].shape[:2]
        prob = outputs["pred_logits"].flatten(0, 1).sigmoid()
        pred_boxes = outputs["pred_boxes"].flatten(0, 1)
        tgt_ids = torch.cat([t["labels"] for t in targets])
        tgt_boxes = torch.cat([t["boxes"] for t in targets])

        neg = (1 - FOCAL_ALPHA) * prob**FOCAL_GAMMA * -(1 - prob + 1e-8).log()
        pos = FOCAL_ALPHA * (1 - prob) ** FOCAL_GAMMA * -(prob + 1e-8).log()
        class_cost = pos[:, tgt_ids] - neg[:, tgt_ids]
        bbox_cost = torch.cdist(pred_boxes, tgt_boxes, p=1)
        giou_cost = -generalized_box_iou(box_cxcywh_to_xyxy(pred_boxes), box_cxcywh_to_xyxy(tgt_boxes))

        cost = self.cost_bbox * bbox_cost + self.cost_class * class_cost + self.cost_giou * giou_cost
        cost = cost.view(batch, queries, -1).cpu()
        sizes = [len(t["boxes"]) for t in targets]
        pairs = [linear_sum_assignment(part[i]) for i, part in enumerate(cost.split(sizes, -1))]
        return [(torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)) for i, j in pairs]


def build_matcher(args: argparse.Namespace) -> HungarianMatcher:
    """The matcher with `--set_cost_class/bbox/giou`."""
    return HungarianMatcher(cost_class=args.set_cost_class, cost_bbox=args.set_cost_bbox, cost_giou=args.set_cost_giou)
