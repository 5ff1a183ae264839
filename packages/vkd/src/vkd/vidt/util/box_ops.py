"""Box format conversions, pairwise IoU and generalised IoU (DETR's `util/box_ops.py`)."""

from __future__ import annotations

import torch
from torchvision.ops.boxes import box_area


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h) -> (x0, y0, x1, y1) along the last dimension."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def box_xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """(x0, y0, x1, y1) -> (cx, cy, w, h) along the last dimension."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), dim=-1)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise IoU (N, M) of xyxy boxes, and the union areas it divided by."""
    top_left = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    extent = (bottom_right - top_left).clamp(min=0)
    inter = extent[..., 0] * extent[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2) - inter
    return inter / union, union


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise generalised IoU (N, M) of xyxy boxes; degenerate boxes (x1 < x0 or y1 < y0) are refused."""
    if not bool((boxes1[:, 2:] >= boxes1[:, :2]).all()) or not bool((boxes2[:, 2:] >= boxes2[:, :2]).all()):
        raise ValueError("generalized_box_iou needs xyxy boxes with x1 >= x0 and y1 >= y0")
    iou, union = box_iou(boxes1, boxes2)
    top_left = torch.min(boxes1[:, None, :2], boxes2[:, :2])
    bottom_right = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
    extent = (bottom_right - top_left).clamp(min=0)
    hull = extent[..., 0] * extent[..., 1]
    return iou - (hull - union) / hull
