"""TinyImageNet-200 (cs231n's ``tiny-imagenet-200``): a train/val reader over both on-disk layouts, and a writer.

The zip's raw layout is ``train/<wnid>/images/*.JPEG`` + ``val/images/*.JPEG`` with ``val/val_annotations.txt``; the
distillers/RepDistiller transfer scripts first run ``get_tinyimagenet.sh``, which moves the val images into
``val/<wnid>/`` folders and reads both splits with ``ImageFolder``. This reader serves either layout the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torchvision import datasets
from torchvision.datasets.folder import default_loader

from kdrepro_shared.data._io import (
    brace,
    check_images,
    check_labels,
    layout_error,
    random_images,
    require_fresh_dir,
    save_image,
)
from kdrepro_shared.data.image_folder import has_image, listed

TINY_IMAGENET_FOLDER = "tiny-imagenet-200"
VAL_ANNOTATIONS = "val_annotations.txt"
TINY_SIZE = (64, 64)
RAW_LAYOUT = brace(
    (
        "wnids.txt",
        "words.txt",
        "train/<wnid>/images/<wnid>_<i>.JPEG",
        "val/images/val_<i>.JPEG",
        f"val/{VAL_ANNOTATIONS}",
        "test/images/",
    )
)


def _not_found(root: Path, why: str) -> Exception:
    """The one-line error naming both layouts the reader accepts."""
    return layout_error(
        f"TinyImageNet-200 not found under {root}: expected {root}/{TINY_IMAGENET_FOLDER}/{RAW_LAYOUT} (cs231n's zip) "
        f"or its get_tinyimagenet.sh reorganisation {root}/{TINY_IMAGENET_FOLDER}/{{train,val}}/<wnid>/*.JPEG; {why}"
    )


def read_val_annotations(path: Path) -> list[tuple[str, str]]:
    """``(file name, wnid)`` rows of ``val_annotations.txt`` (tab-separated: file, wnid, x0, y0, x1, y1)."""
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    if any(len(row) < 2 for row in rows):
        raise layout_error(f"{path} is not tab-separated 'file wnid x0 y0 x1 y1' rows")
    return [(row[0], row[1]) for row in rows]


class TinyImageNet(datasets.ImageFolder):
    """TinyImageNet-200 ``train`` or ``val`` split under ``root/tiny-imagenet-200``: ``(PIL image, class index)`` items.

    Class indices follow the *sorted* wnids (of ``wnids.txt``, else of the ``train/`` folders) for both splits. That is
    ImageFolder's order in the original scripts whenever train and val hold all 200 wnids, as the real data does; unlike
    them, a val split missing some wnids keeps the train indices. Val samples come in (class, file name) order, the
    order ImageFolder gives after ``get_tinyimagenet.sh``. It is an ``ImageFolder``: ``root`` is the split folder, and
    ``classes`` (the wnids), ``class_to_idx``, ``samples``, ``targets`` and ``loader`` are there for subclasses.
    """

    splits = ("train", "val")

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        loader: Callable[[str], Any] = default_loader,
    ) -> None:
        if split not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}")
        self.split = split
        self.wnids = self._check_layout(Path(root).expanduser(), split)
        base = Path(root).expanduser() / TINY_IMAGENET_FOLDER
        super().__init__(str(base / split), transform=transform, target_transform=target_transform, loader=loader)

    @staticmethod
    def _check_layout(root: Path, split: str) -> list[str]:
        """Check the split's folders and return the sorted wnids, or raise one line naming the layouts."""
        base = root / TINY_IMAGENET_FOLDER
        if not base.is_dir():
            hint = f"pass the parent {root.parent}" if (root / "train").is_dir() else f"{base} does not exist"
            raise _not_found(root, hint)
        if not (base / split).is_dir():
            raise _not_found(root, f"{base / split} does not exist")
        wnids_file = base / "wnids.txt"
        if wnids_file.is_file():
            wnids = wnids_file.read_text().split()
        else:
            wnids = [p.name for p in (base / "train").iterdir() if p.is_dir()] if (base / "train").is_dir() else []
        if not wnids:
            raise _not_found(root, f"neither {wnids_file} nor class folders in {base / 'train'}")
        split_dir = base / split
        if (split_dir / VAL_ANNOTATIONS).is_file():
            unknown = sorted({w for _, w in read_val_annotations(split_dir / VAL_ANNOTATIONS)} - set(wnids))
            if unknown or not has_image(split_dir / "images"):
                why = f"unknown wnids {listed(unknown)}" if unknown else f"no images in {split_dir / 'images'}"
                raise _not_found(root, f"{split_dir / VAL_ANNOTATIONS}: {why}")
        else:
            empty = [w for w in sorted(wnids) if not has_image(split_dir / w)]
            if len(empty) == len(wnids) or (split == "train" and empty):
                raise _not_found(root, f"no images for wnids {listed(empty)} in {split_dir}")
        return sorted(wnids)

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        """The sorted wnids, the same for every split (not the folders that happen to exist in `directory`)."""
        return self.wnids, {wnid: i for i, wnid in enumerate(self.wnids)}

    @staticmethod
    def make_dataset(
        directory: str | Path,
        class_to_idx: dict[str, int],
        extensions: tuple[str, ...] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> list[tuple[str, int]]:
        """Samples of ``val_annotations.txt`` in the raw val layout, else of ``<wnid>/`` folders (ImageFolder's walk).

        Wnids without images in val are allowed (the reorganised val of a partial copy); train was checked before.
        """
        annotations = Path(directory) / VAL_ANNOTATIONS
        if not annotations.is_file():
            return datasets.ImageFolder.make_dataset(
                directory, class_to_idx, extensions, is_valid_file, allow_empty=True
            )
        rows = sorted((class_to_idx[wnid], name) for name, wnid in read_val_annotations(annotations))
        return [(str(Path(directory) / "images" / name), target) for target, name in rows]


def _full_box(images: np.ndarray) -> str:
    """The tab-separated ``x0 y0 x1 y1`` box covering a whole image of `images`."""
    return f"0\t0\t{images.shape[2] - 1}\t{images.shape[1] - 1}"


def _write_train(base: Path, images: np.ndarray, labels: np.ndarray, wnids: Sequence[str]) -> None:
    """Write ``train/<wnid>/images/<wnid>_<i>.JPEG`` and each class's ``<wnid>_boxes.txt``."""
    for k, wnid in enumerate(wnids):
        folder = base / "train" / wnid
        (folder / "images").mkdir(parents=True)
        files = [f"{wnid}_{i}.JPEG" for i in range(int((labels == k).sum()))]
        for name, image in zip(files, images[labels == k], strict=True):
            save_image(image, folder / "images" / name)
        (folder / f"{wnid}_boxes.txt").write_text("".join(f"{name}\t{_full_box(images)}\n" for name in files))


def _write_val(base: Path, images: np.ndarray, labels: list[int], wnids: Sequence[str]) -> None:
    """Write ``val/images/val_<i>.JPEG`` and ``val/val_annotations.txt``."""
    (base / "val" / "images").mkdir(parents=True)
    for i, image in enumerate(images):
        save_image(image, base / "val" / "images" / f"val_{i}.JPEG")
    rows = "".join(f"val_{i}.JPEG\t{wnids[y]}\t{_full_box(images)}\n" for i, y in enumerate(labels))
    (base / "val" / VAL_ANNOTATIONS).write_text(rows)


def write_tiny_imagenet(
    root: str | Path,
    images_train: np.ndarray,
    labels_train: Sequence[int],
    images_val: np.ndarray,
    labels_val: Sequence[int],
    *,
    wnids: Sequence[str],
    images_test: np.ndarray | None = None,
    words: Sequence[str] | None = None,
) -> Path:
    """Write N×H×W×3 uint8 images (64×64 in the real set) in the raw ``tiny-imagenet-200`` zip layout; return it.

    Train images go to ``train/<wnid>/images/<wnid>_<i>.JPEG`` with a ``<wnid>_boxes.txt``, val images to
    ``val/images/val_<i>.JPEG`` listed in ``val_annotations.txt``, test images (unlabelled) to ``test/images/``;
    boxes cover the whole image. ``words`` (one per wnid) default to ``synthetic class <i>``.
    """
    names = list(words) if words is not None else [f"synthetic class {i}" for i in range(len(wnids))]
    train = check_images(images_train, "images_train")
    train_labels = np.asarray(check_labels(labels_train, len(train), len(wnids), "labels_train"))
    val = check_images(images_val, "images_val")
    val_labels = check_labels(labels_val, len(val), len(wnids), "labels_val")
    test = check_images(images_test, "images_test") if images_test is not None else []
    base = require_fresh_dir(Path(root) / TINY_IMAGENET_FOLDER)
    (base / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    (base / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in zip(wnids, names, strict=True)))
    _write_train(base, train, train_labels, wnids)
    _write_val(base, val, val_labels, wnids)
    (base / "test" / "images").mkdir(parents=True)
    for i, image in enumerate(test):
        save_image(image, base / "test" / "images" / f"test_{i}.JPEG")
    return base


def write_fake_tiny_imagenet(
    root: str | Path,
    *,
    num_classes: int = 4,
    per_class_train: int = 3,
    per_class_val: int = 2,
    n_test: int = 2,
    seed: int = 0,
) -> Path:
    """Write a tiny raw-layout TinyImageNet of random 64×64 images and wnids ``n00000000``…; return its folder."""
    rng = np.random.default_rng(seed)
    wnids = [f"n{i:08d}" for i in range(num_classes)]
    return write_tiny_imagenet(
        root,
        random_images(rng, num_classes * per_class_train, TINY_SIZE),
        np.repeat(np.arange(num_classes), per_class_train),
        random_images(rng, num_classes * per_class_val, TINY_SIZE),
        np.tile(np.arange(num_classes), per_class_val),
        wnids=wnids,
        images_test=random_images(rng, n_test, TINY_SIZE),
    )
