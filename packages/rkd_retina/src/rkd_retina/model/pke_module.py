"""Progressive keypoint expansion (PKE) of SuperRetina with the RKD constants (original `model/pke_module.py`).

Keypoints the detector finds on an image are kept as new labels when they are geometrically consistent (still
detected after a random affine warp) and content consistent (their descriptors match across the warp); the value
map (`record_module`) then decides which of them enter the enhanced label map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.nn import functional as F

from rkd_retina.common.common_util import nms, sample_keypoint_desc
from rkd_retina.model.record_module import update_value_map

PKE_LABEL_VALUE = 0.8  # value of learned points in the label map before NMS (base SuperRetina used 0.5)


def mapping_points(
    grid: torch.Tensor, points: Sequence[torch.Tensor], h: int, w: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Warp (x, y) `points` with `grid` (B×H×W×2, normalised); keep those landing strictly inside the image.

    Returns the kept points and their warped positions in pixels ((g + 1)/2·(size − 1)).
    """
    filter_points, affine_points = [], []
    for s, k in enumerate(points):
        warped = grid[s, k[:, 1].long(), k[:, 0].long()]
        idx = (warped[:, 0] < 1) & (warped[:, 0] > -1) & (warped[:, 1] < 1) & (warped[:, 1] > -1)
        gp = warped[idx]
        gp[:, 0] = (gp[:, 0] + 1) / 2 * (w - 1)
        gp[:, 1] = (gp[:, 1] + 1) / 2 * (h - 1)
        affine_points.append(gp)
        filter_points.append(k[idx])
    return filter_points, affine_points


def content_filter(  # noqa: PLR0917 (the original positional order)
    descriptor_pred: torch.Tensor,
    affine_descriptor_pred: torch.Tensor,
    geo_points: Sequence[torch.Tensor],
    affine_geo_points: Sequence[torch.Tensor],
    content_thresh: float = 0.7,
    scale: int = 8,
) -> tuple[list[Any], list[Any]]:
    """Content matching: keep a point if its warped descriptor is its nearest neighbour and passes the ratio test.

    Images with at most one point yield empty lists, as in the original.
    """
    descriptors = [
        sample_keypoint_desc(k[None], d[None], scale)[0].permute(1, 0)
        for k, d in zip(geo_points, descriptor_pred, strict=False)
    ]
    aff_descriptors = [
        sample_keypoint_desc(k[None], d[None], scale)[0].permute(1, 0)
        for k, d in zip(affine_geo_points, affine_descriptor_pred, strict=False)
    ]
    content_points: list[Any] = []
    affine_content_points: list[Any] = []
    for i, (desc, aff_desc) in enumerate(zip(descriptors, aff_descriptors, strict=True)):
        dist = torch.norm(desc[:, None] - aff_desc, dim=2, p=2)
        if len(dist) <= 1:
            content_points.append([])
            affine_content_points.append([])
            continue
        val, ind = torch.topk(dist, 2, dim=1, largest=False)
        spatial = ind[:, 0] == torch.arange(len(dist)).to(ind.device)  # rule 1: spatial correspondence
        ratio = val[:, 0] < val[:, 1] * content_thresh  # rule 2: ratio test
        check = ratio * spatial
        content_points.append(geo_points[i][check])
        affine_content_points.append(affine_geo_points[i][check])
    return content_points, affine_content_points


def geometric_filter(
    affine_detector_pred: torch.Tensor,
    points: Sequence[torch.Tensor],
    affine_points: Sequence[torch.Tensor],
    max_num: int = 1024,
    geometric_thresh: float = 0.5,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Geometric matching: keep points whose warped position scores ≥ `geometric_thresh` on the warped det map.

    Warped positions are truncated to integers for the lookup; at most `max_num` points per image are kept.
    """
    geo_points, affine_geo_points = [], []
    for s, k in enumerate(affine_points):
        sample_aff_values = affine_detector_pred[s, 0, k[:, 1].long(), k[:, 0].long()]
        check = sample_aff_values.squeeze() >= geometric_thresh
        geo_points.append(points[s][check][:max_num])
        affine_geo_points.append(k[check][:max_num])
    return geo_points, affine_geo_points


def _heatmap(points_map: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Gaussian heatmap of a B×1×H×W binary point map, clipped to 1."""
    heat = F.conv2d(points_map, kernel, stride=1, padding=(kernel.shape[-1] - 1) // 2)
    heat[heat > 1] = 1
    return heat


def pke_learn(  # noqa: PLR0917 (the original positional order)
    detector_pred: torch.Tensor,
    descriptor_pred: torch.Tensor,
    grid_inverse: torch.Tensor,
    affine_detector_pred: torch.Tensor,
    affine_descriptor_pred: torch.Tensor,
    kernel: torch.Tensor,
    loss_cal: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    label_point_positions: torch.Tensor,
    value_map: torch.Tensor,
    config: Mapping[str, Any],
    PKE_learn: bool = True,  # noqa: N803 (the original keyword)
) -> tuple[torch.Tensor, int, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """Detector loss of the labelled sub-batch, with PKE label expansion when `PKE_learn`.

    Returns (loss, number of learned minus initial points, updated value maps, enhanced binary label map,
    enhanced heatmap); with PKE off: (Dice to the initial heatmap, 0, None, None, initial heatmap).
    """
    initial_label = _heatmap(label_point_positions, kernel)
    if not PKE_learn:
        return loss_cal(detector_pred, initial_label.to(detector_pred)), 0, None, None, initial_label

    nms_size = config["nms_size"]
    nms_thresh = config["nms_thresh"]
    enhanced_label = None
    with torch.no_grad():
        h, w = detector_pred.shape[2:]
        number_pts = 0
        points = nms(detector_pred, nms_thresh=nms_thresh, nms_size=nms_size, detector_label=initial_label, mask=True)
        points, affine_points = mapping_points(grid_inverse, points, h, w)
        geo_points, affine_geo_points = geometric_filter(
            affine_detector_pred, points, affine_points, geometric_thresh=config["geometric_thresh"]
        )
        content_points, _ = content_filter(
            descriptor_pred,
            affine_descriptor_pred,
            geo_points,
            affine_geo_points,
            content_thresh=config["content_thresh"],
            scale=8,
        )
        enhanced_label_pts = []
        for step, learned in enumerate(content_points):
            rows, cols = torch.where(label_point_positions[step, 0] == 1)
            positions = torch.stack((cols, rows), -1)
            final_points = update_value_map(value_map[step], learned, config)

            temp_label = torch.zeros([h, w]).to(detector_pred.device)
            temp_label[final_points[:, 1], final_points[:, 0]] = PKE_LABEL_VALUE
            temp_label[positions[:, 1], positions[:, 0]] = 1
            enhanced_kps = nms(temp_label[None, None], nms_thresh, nms_size)[0]
            number_pts += len(enhanced_kps) - len(positions)

            temp_label[:] = 0
            temp_label[enhanced_kps[:, 1], enhanced_kps[:, 0]] = 1
            enhanced_label_pts.append(temp_label[None, None])
            heat = _heatmap(temp_label[None, None], kernel)
            enhanced_label = heat if enhanced_label is None else torch.cat((enhanced_label, heat))

    affine_pred_inverse = F.grid_sample(affine_detector_pred, grid_inverse, align_corners=True)
    loss_geo = loss_cal(detector_pred, enhanced_label)
    loss_clf = loss_cal(detector_pred, affine_pred_inverse)
    return loss_geo + loss_clf, number_pts, value_map, torch.cat(enhanced_label_pts), enhanced_label
