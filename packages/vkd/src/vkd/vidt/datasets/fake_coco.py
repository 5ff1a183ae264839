"""A tiny COCO 2017 tree for demos and tests: coloured shapes on textured backgrounds, with exact boxes and polygons.

`write_fake_coco(root)` writes `train2017/`, `val2017/` (JPEGs named `%012d.jpg`) and
`annotations/instances_{train,val}2017.json` with `images`, `annotations` (polygon `segmentation`, xywh `bbox`,
polygon `area`, `iscrowd` 0) and `categories`. The category is the shape (rectangle, ellipse, triangle; COCO ids 1,
3 and 90, so the id gaps of real COCO are exercised); colours and textures are random. Same seed, same files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from kdrepro_shared.errors import DatasetExistsError

CATEGORIES = ({"id": 1, "name": "rectangle"}, {"id": 3, "name": "ellipse"}, {"id": 90, "name": "triangle"})
ELLIPSE_POINTS = 24


@dataclass(frozen=True)
class FakeCocoSpec:
    """How many images per split, their size range (pixels) and objects per image."""

    train_images: int = 4
    val_images: int = 2
    min_side: int = 96
    max_side: int = 160
    max_objects: int = 3
    seed: int = 0


def textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An (H, W, 3) uint8 texture: a random base colour, sinusoidal stripes and pixel noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle, period = rng.uniform(0, math.pi), rng.uniform(6, 24)
    stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    base = rng.uniform(60, 190, size=3)
    texture = base + 25 * stripes[..., None] + rng.normal(0, 12, size=(height, width, 3))
    return np.clip(texture, 0, 255).astype(np.uint8)


def shape_polygon(rng: np.random.Generator, category: int, height: int, width: int) -> list[float]:
    """Vertices [x0, y0, x1, y1, ...] of one shape of `category` inside the image (at least 12 px across)."""
    w = rng.uniform(12, width * 0.6)
    h = rng.uniform(12, height * 0.6)
    x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
    if category == 1:
        points = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)]
    elif category == 3:
        cx, cy = x0 + w / 2, y0 + h / 2
        steps = [2 * math.pi * k / ELLIPSE_POINTS for k in range(ELLIPSE_POINTS)]
        points = [(cx + w / 2 * math.cos(t), cy + h / 2 * math.sin(t)) for t in steps]
    else:
        points = [(x0 + w / 2, y0), (x0 + w, y0 + h), (x0, y0 + h)]
    return [round(float(v), 2) for point in points for v in point]


def polygon_area(flat: list[float]) -> float:
    """Shoelace area of a flat vertex list."""
    xs, ys = np.asarray(flat[0::2]), np.asarray(flat[1::2])
    return float(0.5 * abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))


def polygon_bbox(flat: list[float]) -> list[float]:
    """COCO xywh box of a flat vertex list."""
    xs, ys = flat[0::2], flat[1::2]
    return [min(xs), min(ys), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)]


def write_split(root: Path, split: str, *, count: int, first_id: int, spec: FakeCocoSpec, rng: np.random.Generator):
    """Write `count` images of `split` and return its annotation file's dict."""
    folder = root / f"{split}2017"
    folder.mkdir(parents=True)
    images, annotations = [], []
    for k in range(count):
        image_id = first_id + k
        height, width = (int(v) for v in rng.integers(spec.min_side, spec.max_side + 1, size=2))
        canvas = Image.fromarray(textured_background(rng, height, width))
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(1, spec.max_objects + 1))):
            category = int(rng.choice([c["id"] for c in CATEGORIES]))
            polygon = shape_polygon(rng, category, height, width)
            colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
            draw.polygon(list(zip(polygon[0::2], polygon[1::2], strict=True)), fill=colour)
            annotations.append(
                {
                    "id": len(annotations) + 1 + 1000 * (split == "val"),
                    "image_id": image_id,
                    "category_id": category,
                    "segmentation": [polygon],
                    "area": polygon_area(polygon),
                    "bbox": polygon_bbox(polygon),
                    "iscrowd": 0,
                }
            )
        file_name = f"{image_id:012d}.jpg"
        canvas.save(folder / file_name, quality=95)
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
    return {"images": images, "annotations": annotations, "categories": list(CATEGORIES)}


def write_fake_coco(root: str | Path, spec: FakeCocoSpec | None = None) -> Path:
    """Write the tiny COCO tree under `root` (which must be empty or absent) and return `root`."""
    spec = spec or FakeCocoSpec()
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise DatasetExistsError(f"{root} is not empty; remove it or choose another folder for the fake COCO")
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    for split, count, first_id in (("train", spec.train_images, 1000), ("val", spec.val_images, 2000)):
        content = write_split(root, split, count=count, first_id=first_id, spec=spec, rng=rng)
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(content), encoding="utf-8")
    return root
