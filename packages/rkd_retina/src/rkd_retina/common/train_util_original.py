"""Training helpers of the original `common/train_util_original.py` (used by base and LK training).

`common/train_util.py` (Swin training) re-exports the same helpers from here.
"""

from __future__ import annotations

import math
import random
from collections.abc import MutableMapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import scipy.stats as st
import torch
from torch.nn import functional as F
from torchvision import transforms as T

AFFINE_RANGES = {
    # used_for: (degrees, translate fraction, scale range)
    "detector": ((-15.0, 15.0), (0.2, 0.2), (0.9, 1.35)),
    "descriptor": ((-3.0, 3.0), (0.1, 0.1), (0.9, 1.1)),
}
COLOR_JITTER_THRESHOLD = 0.4  # jitter when random.random() >= 0.4, i.e. with probability 0.6


def affine_theta(angle: float, translate: Sequence[float], scale: float, height: int, width: int) -> torch.Tensor:
    """The original's 3×3 θ from RandomAffine parameters: 1/s on the diagonal only, translation divided by H and W."""
    a = -angle * math.pi / 180
    return torch.tensor(
        [
            [1 / scale * math.cos(a), math.sin(-a), -translate[0] / height],
            [math.sin(a), 1 / scale * math.cos(a), -translate[1] / width],
            [0, 0, 1],
        ],
        dtype=torch.float,
    )


def affine_images(images: torch.Tensor, used_for: str = "detector") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Warp each image by a random affine ('detector' or 'descriptor' ranges); return (warped, grid, grid_inverse).

    Draws per image with `torchvision RandomAffine.get_params` (torch RNG); the 'descriptor' variant then, with
    Python-`random` probability 0.6, applies one ColorJitter to the whole batch through RGB and back to gray.
    """
    degrees, translate, scale_ranges = AFFINE_RANGES["detector" if used_for == "detector" else "descriptor"]
    h, w = images.shape[2:]
    thetas, thetas_inv = [], []
    for _ in range(len(images)):
        angle, shift, scale, _ = T.RandomAffine.get_params(
            degrees=list(degrees),
            translate=list(translate),
            scale_ranges=list(scale_ranges),
            shears=None,
            img_size=[h, w],
        )
        theta = affine_theta(angle, shift, scale, images.shape[2], images.shape[3]).to(images)
        thetas.append(theta[:2])
        thetas_inv.append(theta.inverse()[:2])
    grid = F.affine_grid(torch.stack(thetas), images.size(), align_corners=True).to(images)
    grid_inverse = F.affine_grid(torch.stack(thetas_inv), images.size(), align_corners=True).to(images)
    output = F.grid_sample(images, grid, align_corners=True)
    if used_for == "descriptor" and random.random() >= COLOR_JITTER_THRESHOLD:
        output = T.ColorJitter(brightness=0.4, contrast=0.3, saturation=0.3, hue=0.2)(output.repeat(1, 3, 1, 1))
        output = T.Grayscale()(output)
    return output.detach().clone(), grid, grid_inverse


def get_gaussian_kernel(kernlen: int = 21, nsig: float = 5) -> torch.Tensor:
    """1×1×k×k float32 heatmap kernel: sqrt of the outer product of normal-CDF differences, min-max scaled to [0, 1]."""
    interval = (2 * nsig + 1.0) / kernlen
    x = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, kernlen + 1)
    kern1d = np.diff(st.norm.cdf(x))
    kernel = np.sqrt(np.outer(kern1d, kern1d))
    kernel = torch.FloatTensor(kernel / kernel.sum())[None, None]
    return (kernel - kernel.min()) / (kernel.max() - kernel.min())


def _value_map_path(save_dir: str | Path, name: str) -> Path:
    """PNG path of a label's value map: `<save_dir>/<name up to its first dot>.png`."""
    return Path(save_dir) / (name.split(".", maxsplit=1)[0] + ".png")


def value_map_load(
    save_dir: str | Path,
    names: Sequence[str],
    input_with_label: Sequence[bool],
    shape: tuple[int, int] = (768, 768),
    value_maps_running: MutableMapping[str, np.ndarray] | None = None,
) -> torch.Tensor:
    """B×1×H×W uint8 value maps: from the RAM dict, else from PNGs in `save_dir`, else zeros (always for unlabelled)."""
    maps = []
    for s, name in enumerate(names):
        path = _value_map_path(save_dir, name)
        if input_with_label[s] and value_maps_running is not None and name in value_maps_running:
            value_map = value_maps_running[name]
        elif input_with_label[s] and value_maps_running is None and path.exists():
            value_map = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        else:
            value_map = np.zeros(shape[:2], dtype=np.uint8)
        maps.append(torch.from_numpy(value_map)[None, None])
    return torch.cat(maps)


def value_map_save(
    save_dir: str | Path,
    names: Sequence[str],
    input_with_label: Sequence[bool],
    value_maps: torch.Tensor,
    value_maps_running: MutableMapping[str, np.ndarray] | None = None,
) -> None:
    """Store the value maps of labelled samples in the RAM dict, or as PNGs in `save_dir` when there is no dict."""
    for s, name in enumerate(names):
        if not input_with_label[s]:
            continue
        value_map = value_maps[s].squeeze().numpy()
        if value_maps_running is not None:
            value_maps_running[name] = value_map
        else:
            cv2.imwrite(str(_value_map_path(save_dir, name)), value_map)
