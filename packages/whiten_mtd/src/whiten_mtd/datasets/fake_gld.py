"""Writers of tiny GLDv2 copies in the real on-disk layout, for tests and the demo.

Layout: `meta/train.csv` (`id,url,landmark_id`), `meta/train_clean.csv` (`landmark_id,images`, images joined by
single spaces), `meta/train_clean_ids.txt` (every id of train_clean.csv, one per line) and
`train/<a>/<b>/<c>/<id>.jpg` with a, b, c the first three characters of the 16-hex-digit id.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from kdrepro_shared.errors import KdReproError
from whiten_mtd.datasets.gld import TRAIN_CLEAN_CSV, TRAIN_CLEAN_IDS, image_path


def _hex_id(rng: np.random.Generator, taken: set[str]) -> str:
    """A fresh 16-hex-digit image id, like GLDv2's."""
    while True:
        img_id = "".join(rng.choice(list("0123456789abcdef"), size=16))
        if img_id not in taken:
            taken.add(img_id)
            return img_id


def write_gldv2(
    root: str | Path,
    landmarks: Sequence[Sequence[Image.Image]],
    *,
    landmark_ids: Sequence[int] | None = None,
    seed: int = 0,
) -> list[list[str]]:
    """Write one landmark per entry of `landmarks` (its images) under `root`; return the image ids per landmark.

    `landmark_ids` defaults to 7*k for the k-th landmark (sparse, like the real ids); image ids are drawn with `seed`.
    """
    if landmark_ids is None:
        landmark_ids = [7 * k for k in range(len(landmarks))]
    if len(landmark_ids) != len(landmarks):
        raise KdReproError(f"{len(landmark_ids)} landmark ids for {len(landmarks)} landmarks; expected one each")
    if any(len(images) == 0 for images in landmarks):
        raise KdReproError("every landmark needs at least one image")
    root = Path(root)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    taken: set[str] = set()
    groups: list[list[str]] = []
    for images in landmarks:
        ids = [_hex_id(rng, taken) for _ in images]
        for img_id, img in zip(ids, images, strict=True):
            path = image_path(root / "train", img_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            img.convert("RGB").save(path, format="JPEG", quality=90)
        groups.append(ids)

    with (root / "meta/train.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "url", "landmark_id"])
        for landmark, ids in zip(landmark_ids, groups, strict=True):
            writer.writerows([img_id, f"http://127.0.0.1/{img_id}.jpg", landmark] for img_id in ids)
    with (root / TRAIN_CLEAN_CSV).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["landmark_id", "images"])
        writer.writerows([landmark, " ".join(ids)] for landmark, ids in zip(landmark_ids, groups, strict=True))
    (root / TRAIN_CLEAN_IDS).write_text("".join(f"{i}\n" for ids in groups for i in ids), encoding="utf-8")
    return groups


def write_fake_gldv2(
    root: str | Path,
    images_per_landmark: Sequence[int] = (1, 2, 3, 4, 2, 3, 4, 2, 3, 4, 2, 3),
    *,
    size: tuple[int, int] = (80, 60),
    seed: int = 0,
) -> list[list[str]]:
    """Write random-noise landmarks (`images_per_landmark[k]` images of (width, height) `size` each) under `root`.

    The default has 12 landmarks, one of them with a single image (which the training data must drop).
    """
    rng = np.random.default_rng(seed)
    width, height = size
    landmarks = [
        [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(count)]
        for count in images_per_landmark
    ]
    return write_gldv2(root, landmarks, seed=seed)
