"""Synthetic fundus-like images and a tiny fake `Our_data` + `Auxilliary_Training` tree (spec layout) for tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def synthetic_fundus(size: int = 128, seed: int = 0) -> np.ndarray:
    """A size×size×3 uint8 RGB image: a dark disc with a bright optic disc and branching vessel-like curves."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size, 3), np.uint8)
    centre = (size // 2, size // 2)
    cv2.circle(image, centre, int(size * 0.47), (150, 80, 30), -1)
    disc = (int(size * rng.uniform(0.3, 0.7)), int(size * rng.uniform(0.3, 0.7)))
    cv2.circle(image, disc, max(2, size // 12), (240, 200, 120), -1)
    for _ in range(10):
        point = np.array(disc, float)
        heading = rng.uniform(0, 2 * np.pi)
        width = max(1, size // 64 + int(rng.integers(0, 2)))
        for _ in range(12):
            heading += rng.normal(0, 0.35)
            step = point + size / 24 * np.array([np.cos(heading), np.sin(heading)])
            cv2.line(image, tuple(int(v) for v in point), tuple(int(v) for v in step), (90, 30, 15), width)
            point = step
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def write_image(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 array to `path` (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def write_fake_our_data(
    root: str | Path,
    *,
    labelled: int = 2,
    auxiliary: int = 1,
    size: int = 128,
    points: int = 20,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write `<root>/Our_data` (labelled `a.jpg`, `b.jpg`, ... with `x y` labels; train = all, val = last) and
    `<root>/Auxilliary_Training` (unlabelled images); return both folders.
    """
    rng = np.random.default_rng(seed)
    our = Path(root) / "Our_data"
    aux = Path(root) / "Auxilliary_Training"
    (our / "Annotations").mkdir(parents=True, exist_ok=True)
    (our / "ImageSets").mkdir(parents=True, exist_ok=True)
    aux.mkdir(parents=True, exist_ok=True)
    stems = [chr(ord("a") + i) for i in range(labelled + auxiliary)]
    lines = []
    for i, stem in enumerate(stems[:labelled]):
        write_image(our / "ImageData" / f"{stem}.jpg", synthetic_fundus(size, seed + i))
        np.savetxt(our / "Annotations" / f"{stem}.txt", rng.uniform(0.05, 0.95, (points, 2)), fmt="%.6f")
        lines.append(f"{stem}.jpg, {stem}.txt")
    (our / "ImageSets" / "train.txt").write_text("\n".join(lines) + "\n")
    (our / "ImageSets" / "val.txt").write_text(lines[-1] + "\n")
    for i, stem in enumerate(stems[labelled:], start=labelled):
        write_image(aux / f"{stem}.jpg", synthetic_fundus(size, seed + i))
    return our, aux
