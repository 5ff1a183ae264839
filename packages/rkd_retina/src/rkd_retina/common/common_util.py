"""Keypoint helpers and retinal preprocessing of the original `common/common_util.py`."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

GAMMA = 1.2
TRAIN_BORDER = 8


def remove_borders(
    keypoints: torch.Tensor, scores: torch.Tensor, border: int, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the (row, col) keypoints and their scores that lie at least `border` pixels inside the image."""
    rows, cols = keypoints[:, 0], keypoints[:, 1]
    keep = (rows >= border) & (rows < height - border) & (cols >= border) & (cols < width - border)
    return keypoints[keep], scores[keep]


def simple_nms(scores: torch.Tensor, nms_radius: int) -> torch.Tensor:
    """SuperPoint NMS: zero every score that is not a local maximum in a (2r+1)² window; equal maxima all survive."""
    if nms_radius < 0:
        raise ValueError(f"nms_radius must be >= 0, got {nms_radius}")

    def window_max(x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, kernel_size=2 * nms_radius + 1, stride=1, padding=nms_radius)

    zeros = torch.zeros_like(scores)
    is_max = scores == window_max(scores)
    for _ in range(2):
        suppressed = window_max(is_max.float()) > 0
        rest = torch.where(suppressed, zeros, scores)
        is_max = is_max | ((rest == window_max(rest)) & ~suppressed)
    return torch.where(is_max, scores, zeros)


def rgb2gray(rgb: Image.Image) -> Image.Image:
    """Return the green channel of a PIL RGB image (what the original calls gray)."""
    return rgb.split()[1]


def datasets_normalized(images: np.ndarray) -> np.ndarray:
    """Global z-score, then min-max stretch to [0, 255] (float64)."""
    z = (images - np.mean(images)) / (np.std(images) + 1e-6)
    low = np.min(z)
    return (z - low) / (np.max(z) - low) * 255


def clahe_equalized(images: np.ndarray) -> np.ndarray:
    """CLAHE (clip 2.0, 8×8 tiles) on the uint8 cast of a 2-D image; returns float64."""
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    return clahe.apply(np.asarray(images, dtype=np.uint8)).astype(np.float64)


def adjust_gamma(images: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Gamma correction through a 256-entry uint8 lookup table on the uint8 cast; returns float64."""
    table = ((np.arange(256) / 255.0) ** (1.0 / gamma) * 255).astype(np.uint8)
    return cv2.LUT(np.asarray(images, dtype=np.uint8), table).astype(np.float64)


def pre_processing(data: np.ndarray) -> np.ndarray:
    """Enhance one retinal channel: normalise, CLAHE, gamma 1.2, scale to float32 in [0, 1]."""
    enhanced = adjust_gamma(clahe_equalized(datasets_normalized(data)), GAMMA)
    return (enhanced / 255.0).astype(np.float32)


def nms(
    detector_pred: torch.Tensor,
    nms_thresh: float = 0.1,
    nms_size: int = 10,
    detector_label: torch.Tensor | None = None,
    mask: bool = False,
) -> list[torch.Tensor]:
    """Per image, the (x, y) long keypoints of `simple_nms` maxima above `nms_thresh`, 8 px border removed.

    `detector_label` and `mask` are accepted for the original's signature and ignored, as there.
    """
    del detector_label, mask
    pred = detector_pred.clone().detach()
    batch, _, h, w = pred.shape
    scores = simple_nms(pred, nms_size).reshape(batch, h, w)
    points = []
    for score in scores:
        rows_cols = torch.nonzero(score > nms_thresh)
        kept, _ = remove_borders(rows_cols, score[tuple(rows_cols.t())], TRAIN_BORDER, h, w)
        points.append(torch.flip(kept, [1]).long())
    return points


def sample_keypoint_desc(keypoints: torch.Tensor, descriptors: torch.Tensor, s: int = 8) -> torch.Tensor:
    """Bilinearly sample L2-normalised descriptors (B, C, N) at (B, N, 2) xy keypoints of an s-times larger map.

    Keeps the original's divisor `w·s − 1` (751 for a 94-wide map of a 768 input), so points with x or y ≥ 760
    sample wholly in the zero padding and get an all-zero descriptor.
    """
    b, c, h, w = descriptors.shape
    grid = keypoints.clone().float()
    grid /= torch.tensor([w * s - 1, h * s - 1]).to(grid)[None]
    grid = grid * 2 - 1
    sampled = F.grid_sample(descriptors, grid.view(b, 1, -1, 2), mode="bilinear", align_corners=True)
    return F.normalize(sampled.reshape(b, c, -1), p=2, dim=1)


def _sample_pairs(
    keypoints: list[torch.Tensor],
    affine_keypoints: list[torch.Tensor],
    descriptor_pred: torch.Tensor,
    affine_descriptor_pred: torch.Tensor,
    scale: int,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Sample C×N descriptors at `keypoints` in `descriptor_pred` and at `affine_keypoints` in the affine map."""

    def sample(points: list[torch.Tensor], maps: torch.Tensor) -> list[torch.Tensor]:
        return [sample_keypoint_desc(k[None], d[None], s=scale)[0] for k, d in zip(points, maps, strict=True)]

    descriptors = sample(keypoints, descriptor_pred)
    affine_descriptors = sample(affine_keypoints, affine_descriptor_pred)
    return descriptors, affine_descriptors


def sample_descriptors(  # noqa: PLR0917 (the original positional order)
    detector_pred: torch.Tensor,
    descriptor_pred: torch.Tensor,
    affine_descriptor_pred: torch.Tensor,
    grid_inverse: torch.Tensor,
    nms_size: int = 10,
    nms_thresh: float = 0.1,
    scale: int = 8,
    affine_detector_pred: torch.Tensor | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Descriptors at NMS keypoints and at their warped positions (via `grid_inverse`) that stay inside the image.

    Returns (descriptors, affine descriptors, all NMS keypoints); `affine_detector_pred` is unused, as originally.
    """
    del affine_detector_pred
    _, _, h, w = detector_pred.shape
    keypoints = nms(detector_pred, nms_size=nms_size, nms_thresh=nms_thresh)
    kept, warped = [], []
    for b, points in enumerate(keypoints):
        g = grid_inverse[b, points[:, 1].long(), points[:, 0].long()]
        inside = (g[:, 0] < 1) & (g[:, 0] > -1) & (g[:, 1] < 1) & (g[:, 1] > -1)
        kept.append(points[inside])
        g = g[inside]
        g[:, 0] = (g[:, 0] + 1) / 2 * (w - 1)
        g[:, 1] = (g[:, 1] + 1) / 2 * (h - 1)
        warped.append(g)
    descriptors, affine_descriptors = _sample_pairs(kept, warped, descriptor_pred, affine_descriptor_pred, scale)
    return descriptors, affine_descriptors, keypoints


def sample_descriptors_knowledge(  # noqa: PLR0917 (the original positional order)
    detector_pred: torch.Tensor,
    descriptor_pred: torch.Tensor,
    affine_descriptor_pred: torch.Tensor,
    nms_size: int = 10,
    nms_thresh: float = 0.1,
    scale: int = 8,
    affine_detector_pred: torch.Tensor | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Teacher (`descriptor_pred`) and student (`affine_descriptor_pred`) descriptors at the same NMS keypoints.

    Keeps points strictly inside (0, W−1)×(0, H−1); returns (teacher, student, all NMS keypoints).
    """
    del affine_detector_pred
    _, _, h, w = detector_pred.shape
    keypoints = nms(detector_pred, nms_size=nms_size, nms_thresh=nms_thresh)
    kept = []
    for points in keypoints:
        x, y = points[:, 0], points[:, 1]
        kept.append(points[(x < w - 1) & (x > 0) & (y < h - 1) & (y > 0)])
    descriptors, affine_descriptors = _sample_pairs(kept, kept, descriptor_pred, affine_descriptor_pred, scale)
    return descriptors, affine_descriptors, keypoints
