"""The FIRE registration set on disk: the pair list `test_on_FIRE` evaluates, and a fake FIRE writer for tests.

Layout: `FIRE/Images/<ID>_1.jpg` (reference) and `<ID>_2.jpg` (query), `FIRE/Ground Truth/control_points_<ID>_1_2.txt`
with rows `x1 y1 x2 y2` (the same point in image 1 and image 2, native pixels). 134 pairs: 71 S, 49 P, 14 A.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from kdrepro_shared.errors import DatasetLayoutError
from rkd_retina.dataset.fake_data import synthetic_fundus, write_image

FIRE_CATEGORY_SIZES = {"S": 71, "P": 49, "A": 14}
EXCLUDED_PAIR = "P37_1_2"  # wrong annotation; the original skips it
GT_DIR = "Ground Truth"
IMAGE_DIR = "Images"
LAYOUT = "<data>/FIRE/Images/<ID>_1.jpg, <ID>_2.jpg and <data>/FIRE/Ground Truth/control_points_<ID>_1_2.txt"


@dataclass(frozen=True)
class FirePair:
    """One FIRE pair: category letter, ground-truth file, query (`_2`) and reference (`_1`) image paths."""

    name: str
    category: str
    gt_path: Path
    query_path: Path
    refer_path: Path


def list_fire_pairs(fire_root: str | Path) -> list[FirePair]:
    """The sorted FIRE pairs under `fire_root` (P37_1_2 excluded), checked: both images exist with equal sizes."""
    root = Path(fire_root)
    gt_dir, im_dir = root / GT_DIR, root / IMAGE_DIR
    for needed in (gt_dir, im_dir):
        if not needed.is_dir():
            raise DatasetLayoutError(f"{needed} is not a folder; FIRE needs {LAYOUT}")
    names = sorted(p.name for p in gt_dir.iterdir() if p.name.endswith(".txt") and not p.name.endswith("P37_1_2.txt"))
    if not names:
        raise DatasetLayoutError(f"{gt_dir} holds no control_points_*.txt; FIRE needs {LAYOUT}")
    pairs = []
    for file_name in names:
        parts = file_name.removesuffix(".txt").split("_")
        if len(parts) != 5 or parts[:2] != ["control", "points"] or not parts[2]:
            raise DatasetLayoutError(f"{gt_dir / file_name} is not named control_points_<ID>_1_2.txt; see {LAYOUT}")
        pair = FirePair(
            name=file_name.removesuffix(".txt"),
            category=parts[2][0],
            gt_path=gt_dir / file_name,
            query_path=im_dir / f"{parts[2]}_{parts[4]}.jpg",
            refer_path=im_dir / f"{parts[2]}_{parts[3]}.jpg",
        )
        sizes = []
        for image in (pair.query_path, pair.refer_path):
            if not image.is_file():
                raise DatasetLayoutError(f"{image} is missing for {file_name}; FIRE needs {LAYOUT}")
            with Image.open(image) as opened:
                sizes.append(opened.size)
        if sizes[0] != sizes[1]:
            raise DatasetLayoutError(
                f"{pair.query_path.name} is {sizes[0][0]}×{sizes[0][1]} but {pair.refer_path.name} is "
                f"{sizes[1][0]}×{sizes[1][1]}; the images of a FIRE pair must have the same size"
            )
        pairs.append(pair)
    return pairs


def load_control_points(gt_path: str | Path) -> np.ndarray:
    """n×4 `x1 y1 x2 y2` rows of a FIRE ground-truth file (a single row gives 1×4)."""
    try:
        points = np.loadtxt(gt_path, ndmin=2)
    except ValueError as err:
        raise DatasetLayoutError(f"{gt_path} is not rows of 'x1 y1 x2 y2' floats: {err}") from None
    if points.shape[0] == 0 or points.shape[1] != 4:
        raise DatasetLayoutError(f"{gt_path} has shape {points.shape}; expected rows of 4 floats 'x1 y1 x2 y2'")
    return points


def fire_pair_ids() -> list[str]:
    """The 134 FIRE pair IDs: S01..S71, P01..P49, A01..A14."""
    return [f"{c}{i:02d}" for c, n in FIRE_CATEGORY_SIZES.items() for i in range(1, n + 1)]


def write_fake_fire(
    root: str | Path,
    *,
    pairs: list[str] | None = None,
    size: int = 128,
    points: int = 10,
    max_shift: float = 0.05,
    max_angle: float = 3.0,
    seed: int = 0,
    draw: Callable[[int, int], np.ndarray] = synthetic_fundus,
) -> dict[str, np.ndarray]:
    """Write a fake FIRE set under `<root>/FIRE` (default: all 134 pair IDs) and return, per ID, the true 3×3
    homography mapping query (`_2`) pixels to reference (`_1`) pixels.

    Each reference is `draw(size, seed + index)` (RGB uint8; `synthetic_fundus` by default); its query is the
    reference warped by a random rotation and shift; the ground truth has `points` rows `x1 y1 x2 y2` (`%.6f`)
    inside the central 60% of the reference.
    """
    rng = np.random.default_rng(seed)
    fire = Path(root) / "FIRE"
    (fire / GT_DIR).mkdir(parents=True, exist_ok=True)
    homographies = {}
    for index, pair_id in enumerate(pairs if pairs is not None else fire_pair_ids()):
        refer = draw(size, seed + index)
        angle = rng.uniform(-max_angle, max_angle)
        refer_to_query = np.eye(3)
        refer_to_query[:2] = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
        refer_to_query[:2, 2] += rng.uniform(-max_shift, max_shift, 2) * size
        query = cv2.warpPerspective(refer, refer_to_query, (size, size), borderMode=cv2.BORDER_CONSTANT)
        write_image(fire / IMAGE_DIR / f"{pair_id}_1.jpg", refer)
        write_image(fire / IMAGE_DIR / f"{pair_id}_2.jpg", query)
        refer_points = rng.uniform(0.2 * size, 0.8 * size, (points, 2))
        query_points = cv2.perspectiveTransform(refer_points.reshape(-1, 1, 2), refer_to_query).reshape(-1, 2)
        rows = np.hstack([refer_points, query_points])
        np.savetxt(fire / GT_DIR / f"control_points_{pair_id}_1_2.txt", rows, fmt="%.6f")
        homographies[pair_id] = np.linalg.inv(refer_to_query)
    return homographies
