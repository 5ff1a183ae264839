"""Writers of tiny ROxford5k / RParis6k / R1M copies in the revisitop on-disk layout, for tests and the demo.

Layout: `<root>/<dataset>/gnd_<dataset>.pkl` (dict with `imlist`, `qimlist`, `gnd` = per-query `bbx`, `easy`,
`hard`, `junk`) and `<root>/<dataset>/jpg/<name>.jpg`; R1M: `<root>/revisitop1m/revisitop1m.txt` listing names that
carry their sub-folder and extension, images under `<root>/revisitop1m/jpg/`.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kdrepro_shared.errors import KdReproError

PREFIXES = {"roxford5k": "oxc1", "rparis6k": "paris"}


def _noise_image(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A random RGB image of (width, height) `size`."""
    width, height = size
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def write_revisitop(
    root: str | Path,
    dataset: str,
    database: Sequence[Image.Image],
    queries: Sequence[Image.Image],
    gnd: Sequence[dict[str, Any]],
) -> Path:
    """Write `database`/`queries` as JPEGs and the gnd pickle of `dataset`; return `<root>/<dataset>`."""
    if dataset not in PREFIXES:
        raise KdReproError(f"unknown dataset {dataset!r}; expected one of {', '.join(PREFIXES)}")
    if len(gnd) != len(queries):
        raise KdReproError(f"gnd has {len(gnd)} entries but there are {len(queries)} queries; expected one per query")
    prefix = PREFIXES[dataset]
    folder = Path(root) / dataset
    (folder / "jpg").mkdir(parents=True, exist_ok=True)
    imlist = [f"{prefix}_db_{i:04d}" for i in range(len(database))]
    qimlist = [f"{prefix}_q_{i:02d}" for i in range(len(queries))]
    for name, image in zip(imlist + qimlist, [*database, *queries], strict=True):
        image.convert("RGB").save(folder / "jpg" / f"{name}.jpg", quality=95)
    with (folder / f"gnd_{dataset}.pkl").open("wb") as file:
        pickle.dump({"imlist": imlist, "qimlist": qimlist, "gnd": list(gnd)}, file)
    return folder


def random_gnd(
    n_db: int, n_query: int, rng: np.random.Generator, sizes: tuple[int, int, int] = (3, 2, 2)
) -> list[dict[str, Any]]:
    """Disjoint random easy/hard/junk index lists per query; query 0 has no easy and the last one no hard images."""
    n_easy, n_hard, n_junk = sizes
    if n_easy + n_hard + n_junk > n_db:
        raise KdReproError(f"need at least {n_easy + n_hard + n_junk} database images for the gnd, got {n_db}")
    gnd = []
    for q in range(n_query):
        picked = rng.permutation(n_db)[: n_easy + n_hard + n_junk].tolist()
        easy, hard, junk = picked[:n_easy], picked[n_easy : n_easy + n_hard], picked[n_easy + n_hard :]
        if q == 0:
            easy = []
        if q == n_query - 1 and n_query > 1:
            hard = []
        gnd.append({"bbx": [4.0, 3.0, 60.0, 50.0], "easy": easy, "hard": hard, "junk": junk})
    return gnd


def write_fake_revisitop(
    root: str | Path,
    dataset: str = "roxford5k",
    *,
    n_db: int = 20,
    n_query: int = 4,
    size: tuple[int, int] = (96, 72),
    seed: int = 0,
) -> Path:
    """Random-noise images and a random gnd (see `random_gnd`) in the revisitop layout; return the dataset folder."""
    rng = np.random.default_rng(seed)
    database = [_noise_image(rng, size) for _ in range(n_db)]
    queries = [_noise_image(rng, size) for _ in range(n_query)]
    return write_revisitop(root, dataset, database, queries, random_gnd(n_db, n_query, rng))


def write_revisitop_from_labels(
    root: str | Path,
    dataset: str,
    images: Sequence[Image.Image],
    labels: Sequence[int],
    *,
    queries_per_label: int = 1,
    seed: int = 0,
) -> Path:
    """Split labelled images into queries and a database; same-label images alternate between easy and hard.

    Every third same-label image is junk instead, so all three setups have positives and junk to skip.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    query_idx: list[int] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        query_idx += rng.permutation(members)[:queries_per_label].tolist()
    chosen = set(query_idx)
    db_idx = [i for i in range(len(images)) if i not in chosen]
    gnd = []
    for q in query_idx:
        same = [j for j, i in enumerate(db_idx) if labels[i] == labels[q]]
        roles: dict[str, list[int]] = {"easy": [], "hard": [], "junk": []}
        for position, j in enumerate(same):
            roles[("easy", "hard", "junk")[position % 3]].append(j)
        width, height = images[q].size
        gnd.append({"bbx": [0.0, 0.0, float(width - 1), float(height - 1)], **roles})
    return write_revisitop(root, dataset, [images[i] for i in db_idx], [images[q] for q in query_idx], gnd)


def write_fake_revisitop1m(root: str | Path, *, n: int = 10, size: tuple[int, int] = (96, 72), seed: int = 1) -> Path:
    """A tiny R1M: noise JPEGs in sub-folders and `revisitop1m.txt` listing `<sub>/<name>.jpg`; return the folder."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "revisitop1m"
    names = [f"{i % 3:02d}/distractor_{i:06d}.jpg" for i in range(n)]
    for name in names:
        path = folder / "jpg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _noise_image(rng, size).save(path, quality=95)
    (folder / "revisitop1m.txt").write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return folder
