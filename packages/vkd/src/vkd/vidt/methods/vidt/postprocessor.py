"""ViDT's `PostProcess`: logits and boxes to the top-100 (score, label, absolute xyxy box) detections per image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdrepro_shared.errors import KdReproError
from vkd.vidt.util import box_ops

TOP_K = 100


class PostProcess(nn.Module):
    """Converts the detector's output to the COCO API format (`coco`: sigmoid top-100 over queries × classes)."""

    def __init__(self, dataset_file: str) -> None:
        super().__init__()
        if dataset_file not in ("coco", "voc"):
            raise KdReproError(f"PostProcess: dataset_file {dataset_file!r} is not supported; use 'coco' or 'voc'")
        self.dataset_file = dataset_file

    @torch.no_grad()
    def forward(
        self, outputs: dict, target_sizes: torch.Tensor, target_boxes: list[torch.Tensor] | None = None
    ) -> list[dict] | tuple[list[dict], list[torch.Tensor]]:
        """Detections per image scaled by `target_sizes` (B, 2) = (h, w); `voc` also returns the scaled targets."""
        logits, boxes = outputs["pred_logits"], outputs["pred_boxes"]
        if len(logits) != len(target_sizes) or target_sizes.shape[1] != 2:
            raise ValueError("target_sizes must be (batch, 2) with one (h, w) row per image")
        img_h, img_w = target_sizes.unbind(1)
        scale = torch.stack([img_w, img_h, img_w, img_h], dim=1).to(torch.float32)
        xyxy = box_ops.box_cxcywh_to_xyxy(boxes)
        if self.dataset_file == "voc":
            scores, labels = F.softmax(logits, -1).max(-1)
            scaled = xyxy * scale[:, None, :]
            rows = zip(scores, labels, scaled, strict=True)
            results = [{"scores": s, "labels": lab, "boxes": b} for s, lab, b in rows]
            truths = [box_ops.box_cxcywh_to_xyxy(t) * scale[i] for i, t in enumerate(target_boxes or [])]
            return results, truths
        num_classes = logits.shape[2]
        scores, flat_index = torch.topk(logits.sigmoid().view(logits.shape[0], -1), TOP_K, dim=1)
        query = flat_index // num_classes
        labels = flat_index % num_classes
        picked = torch.gather(xyxy, 1, query.unsqueeze(-1).repeat(1, 1, 4)) * scale[:, None, :]
        return [{"scores": s, "labels": lab, "boxes": b} for s, lab, b in zip(scores, labels, picked, strict=True)]
