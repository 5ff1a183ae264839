"""ImageFolder trees (ImageNet's ``root/{train,val}/<wnid>/*.JPEG``): a layout-checking torchvision reader, a writer."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torchvision import datasets
from torchvision.datasets.folder import IMG_EXTENSIONS, default_loader, has_file_allowed_extension

from kdrepro_shared.data._io import (
    check_images,
    check_labels,
    layout_error,
    random_images,
    require_fresh_dir,
    save_image,
)

FAKE_WNIDS = ("n00000000", "n00000001")
_LISTED = 3  # class names quoted in an error before "(+N more)"


def has_image(directory: Path, is_valid_file: Callable[[str], bool] | None = None) -> bool:
    """Whether `directory` holds, at any depth, a file torchvision's ImageFolder would load (stops at the first)."""
    valid = is_valid_file or (lambda path: has_file_allowed_extension(path, IMG_EXTENSIONS))
    return any(valid(str(Path(d) / f)) for d, _, files in os.walk(directory, followlinks=True) for f in files)


def listed(names: Sequence[str]) -> str:
    """The first few `names`, comma-separated, with a count of the rest, for one-line error messages."""
    more = f" (+{len(names) - _LISTED} more)" if len(names) > _LISTED else ""
    return ", ".join(names[:_LISTED]) + more


def check_image_folder(
    directory: Path, is_valid_file: Callable[[str], bool] | None = None, allow_empty: bool = False
) -> None:
    """Raise one line naming the ``<directory>/<class>/<images>`` layout when the tree cannot be read as classes."""
    expected = (
        f"expected {directory}/<class>/<image files> (one folder of images per class, as ImageNet's train/<wnid>/)"
    )
    if not directory.is_dir():
        parent = directory.parent
        hint = f"; {parent} holds {listed(sorted(p.name for p in parent.iterdir()))}" if parent.is_dir() else ""
        raise layout_error(f"image folder {directory} not found: {expected}{hint}")
    classes = sorted(p.name for p in directory.iterdir() if p.is_dir())
    if not classes:
        raise layout_error(f"no class folders in {directory}: {expected}")
    empty = [c for c in classes if not has_image(directory / c, is_valid_file)]
    if empty and not allow_empty:
        raise layout_error(f"class folders without images in {directory}: {listed(empty)}; {expected}")


class ImageFolder(datasets.ImageFolder):
    """``torchvision.datasets.ImageFolder`` that checks the layout first and fails with one line naming it.

    Same arguments (``loader``, ``is_valid_file`` and ``allow_empty`` by keyword) and attributes (``root``, ``classes``,
    ``class_to_idx``, ``samples``, ``targets``, ``imgs``, ``loader``). The keyword ``split`` reads ``root/split``
    (e.g. ``ImageFolder(imagenet, split="val")``); ``self.root`` is then that split folder, as if it had been passed.
    """

    def __init__(
        self,
        root: str | Path,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        *,
        loader: Callable[[str], Any] = default_loader,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
        split: str | None = None,
    ) -> None:
        directory = Path(root).expanduser() / split if split else Path(root).expanduser()
        check_image_folder(directory, is_valid_file, allow_empty)
        super().__init__(
            str(directory),
            transform=transform,
            target_transform=target_transform,
            loader=loader,
            is_valid_file=is_valid_file,
            allow_empty=allow_empty,
        )


def write_image_folder(
    root: str | Path,
    split: str,
    images: np.ndarray | Sequence[np.ndarray],
    labels: Sequence[int],
    classes: Sequence[str],
    *,
    ext: str = ".JPEG",
) -> Path:
    """Write H×W×3 uint8 images as ``root/split/<class>/<class>_<i><ext>`` (JPEGs at quality 95); return ``root/split``.

    Every class gets its folder even without images. The split folder must be new or empty (`DatasetExistsError`).
    """
    images = [check_images(np.asarray(im)[None], f"image {i}")[0] for i, im in enumerate(images)]
    labels = check_labels(labels, len(images), len(classes), "labels")
    folder = require_fresh_dir(Path(root) / split)
    counts = dict.fromkeys(classes, 0)
    for name in classes:
        (folder / name).mkdir()
    for image, y in zip(images, labels, strict=True):
        name = classes[y]
        save_image(image, folder / name / f"{name}_{counts[name]}{ext}")
        counts[name] += 1
    return folder


def write_fake_image_folder(
    root: str | Path,
    *,
    classes: Sequence[str] = FAKE_WNIDS,
    per_class: int = 2,
    size: tuple[int, int] = (32, 32),
    splits: Sequence[str] = ("train", "val"),
    ext: str = ".JPEG",
    seed: int = 0,
) -> Path:
    """Write a tiny ImageFolder tree of random images, ``per_class`` per class in each split; return `root`."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(classes)), per_class)
    for split in splits:
        write_image_folder(root, split, random_images(rng, len(labels), size), labels, classes, ext=ext)
    return Path(root)
