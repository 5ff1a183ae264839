"""What the dataset readers and writers share: one-line layout errors, idempotent file publishing, image saving."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from kdrepro_shared.errors import DatasetExistsError, DatasetLayoutError

JPEG_QUALITY = 95


def layout_error(message: str) -> DatasetLayoutError:
    """Build a `DatasetLayoutError`, folding any line breaks so the message stays one line."""
    return DatasetLayoutError(" ".join(message.splitlines()))


def brace(names: Sequence[str]) -> str:
    """Format file names as the shell-style `{a,b,c}` the layout messages use."""
    return "{" + ",".join(names) + "}"


def missing_files(folder: Path, names: Sequence[str]) -> list[str]:
    """Names of `names` that are not regular files in `folder`."""
    return [name for name in names if not (folder / name).is_file()]


def holds_exactly(folder: Path, files: Mapping[str, bytes]) -> bool:
    """Whether `folder` contains exactly `files` (same relative names, same bytes) and nothing else."""
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    return present == set(files) and all((folder / name).read_bytes() == data for name, data in files.items())


def require_fresh_dir(folder: Path) -> Path:
    """Create `folder` if needed; refuse a non-empty one so a writer never overwrites a real dataset."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DatasetExistsError(f"{folder} already exists and is not empty: delete it or write to another root")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def publish_files(folder: Path, files: Mapping[str, bytes]) -> Path:
    """Write `files` (relative name -> bytes) as `folder` in one rename; an identical existing copy is left alone."""
    if folder.is_dir() and holds_exactly(folder, files):
        return folder
    require_fresh_dir(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, data in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(data)
        folder.rmdir()
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def check_images(images: np.ndarray, what: str, hw: tuple[int, int] | None = None) -> np.ndarray:
    """Check that `images` is uint8 N×H×W×3 (with H×W = `hw` when given) and return it as an array."""
    images = np.asarray(images)
    ok_shape = images.ndim == 4 and images.shape[3] == 3 and (hw is None or images.shape[1:3] == hw)
    if images.dtype != np.uint8 or not ok_shape:
        size = "H, W" if hw is None else f"{hw[0]}, {hw[1]}"
        raise ValueError(f"{what} must be uint8 of shape (N, {size}, 3), got {images.dtype} {images.shape}")
    return images


def check_labels(labels: Sequence[int] | np.ndarray, n: int, num_classes: int, what: str) -> list[int]:
    """Check that `labels` holds `n` class indices in [0, num_classes) and return them as Python ints."""
    out = [int(y) for y in np.asarray(labels).reshape(-1)]
    if len(out) != n or any(not 0 <= y < num_classes for y in out):
        raise ValueError(f"{what} must be {n} integers in [0, {num_classes}), got {len(out)}: {out[:10]}")
    return out


def save_image(array: np.ndarray, path: Path) -> None:
    """Save an H×W×3 uint8 array with PIL; JPEGs at quality 95 without chroma subsampling to stay close to the array."""
    image = Image.fromarray(array)
    if path.suffix.lower() in {".jpg", ".jpeg"}:
        image.save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    else:
        image.save(path)


def random_images(rng: np.random.Generator, n: int, hw: tuple[int, int]) -> np.ndarray:
    """N random RGB images as uint8 N×H×W×3, the content of the fake dataset copies."""
    return rng.integers(0, 256, size=(n, *hw, 3), dtype=np.uint8)
