"""Writer of a tiny SVD copy in the real layout: `metadata-release/` files, frame folders, `num_frames`, `svd.yaml`.

Each query has `candidates_per_query` labeled candidates; the first `positives` of them are near-duplicates (the
query's frames plus noise), the rest and the unlabeled videos are unrelated. The first half of the queries form the
train ground truth, the rest the test ground truth. Ids carry `.mp4` in the id lists and ground truth, as the real
metadata may.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from kdrepro_shared.errors import KdReproError

META_FILES = {
    "all_video_id": "all-video-id",
    "labeled_id": "labeled-data-id",
    "unlabeled_id": "unlabeled-data-id",
    "query_id": "query-id",
    "groundtruth": "groundtruth",
    "train_groundtruth": "train_groundtruth",
    "test_groundtruth": "test_groundtruth",
}


def _frames(
    rng: np.random.Generator, base: np.ndarray | None, count: int, size: tuple[int, int], noise: int
) -> list[np.ndarray]:
    """`count` uint8 frames: noisy copies of `base` (a near-duplicate) or of a fresh blocky random pattern."""
    width, height = size
    if base is None:
        coarse = rng.integers(0, 256, (-(-height // 8), -(-width // 8), 3)).astype(np.int16)
        base = coarse.repeat(8, axis=0).repeat(8, axis=1)[:height, :width]
    return [np.clip(base + rng.integers(-noise, noise + 1, base.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def write_fake_svd(
    root: str | Path,
    *,
    n_query: int = 4,
    candidates_per_query: int = 5,
    positives: int = 2,
    n_unlabeled: int = 6,
    frames: tuple[int, int] = (3, 8),
    size: tuple[int, int] = (64, 48),
    noise: int = 60,
    seed: int = 0,
) -> Path:
    """Write the fake SVD under `root` and return the path of its `svd.yaml` (absolute paths inside).

    Frames of a near-duplicate are the query's first frame plus uniform noise of +-`noise` grey levels.
    """
    if n_query < 2 or not 0 < positives <= candidates_per_query:
        raise KdReproError("need n_query >= 2 and 0 < positives <= candidates_per_query")
    rng = np.random.default_rng(seed)
    root = Path(root).resolve()
    meta, frame_root = root / "metadata-release", root / "frames"
    meta.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}

    def video(vid: str, base: np.ndarray | None) -> np.ndarray:
        counts[vid] = int(rng.integers(frames[0], frames[1] + 1))
        shots = _frames(rng, base, counts[vid], size, noise)
        (frame_root / vid).mkdir(parents=True, exist_ok=True)
        for i, shot in enumerate(shots):
            Image.fromarray(shot).save(frame_root / vid / f"{i:04d}.jpg", quality=95)
        return shots[0].astype(np.int16)

    queries = [f"q{q:03d}" for q in range(n_query)]
    labeled: list[str] = []
    lines: list[str] = []
    for qid in queries:
        base = video(qid, None)
        for c in range(candidates_per_query):
            cid = f"{qid}_c{c}"
            video(cid, base if c < positives else None)
            labeled.append(cid)
            lines.append(f"{qid}.mp4 {cid}.mp4 {int(c < positives)}")
    unlabeled = [f"u{u:03d}" for u in range(n_unlabeled)]
    for uid in unlabeled:
        video(uid, None)

    def write_lines(name: str, rows: list[str]) -> None:
        (meta / name).write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")

    split = len(lines) // 2 // candidates_per_query * candidates_per_query
    write_lines("query-id", [f"{v}.mp4" for v in queries])
    write_lines("labeled-data-id", [f"{v}.mp4" for v in labeled])
    write_lines("unlabeled-data-id", [f"{v}.mp4" for v in unlabeled])
    write_lines("all-video-id", [f"{v}.mp4" for v in queries + labeled + unlabeled])
    write_lines("groundtruth", lines)
    write_lines("train_groundtruth", lines[:split])
    write_lines("test_groundtruth", lines[split:])
    (root / "num_frames").write_text("".join(f"{v} {n}\n" for v, n in counts.items()), encoding="utf-8")
    cfg = {key: str(meta / name) for key, name in META_FILES.items()}
    cfg.update(
        video_root_paths=[str(root / "query"), str(root / "labeled-0"), str(root / "unlabeled-0")],
        frame_root_path=str(frame_root),
        frame_count_file=str(root / "num_frames"),
        feature_root_path=str(root / "features"),
    )
    path = root / "svd.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path
