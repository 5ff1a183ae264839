"""STL-10 in its binary layout (``stl10_binary/*.bin``): a checksum-free reader with torchvision's semantics, a writer.

Each X file is raw uint8 images stored N×3×96×96 *column-major* per image (hence the H/W transpose on read and write);
each y file is one uint8 label per image, 1..10 on disk and 0..9 in memory; unlabelled images get label -1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from torchvision.datasets import VisionDataset

from kdrepro_shared.data._io import brace, check_labels, layout_error, missing_files, publish_files, random_images

STL10_FOLDER = "stl10_binary"
STL10_SIZE = (96, 96)
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
STL10_NUM_FOLDS = 10
_IMAGE_BYTES = 3 * STL10_SIZE[0] * STL10_SIZE[1]
_FILES = {
    "train": ("train_X.bin", "train_y.bin"),
    "test": ("test_X.bin", "test_y.bin"),
    "unlabeled": ("unlabeled_X.bin",),
    "train+unlabeled": ("train_X.bin", "train_y.bin", "unlabeled_X.bin"),
}
_LAYOUT = brace(
    (
        "train_X.bin",
        "train_y.bin",
        "test_X.bin",
        "test_y.bin",
        "unlabeled_X.bin",
        "class_names.txt",
        "fold_indices.txt",
    )
)


class STL10(VisionDataset):
    """STL-10 ``split`` (train, test, unlabeled, train+unlabeled) read from ``root/stl10_binary``.

    Drop-in for ``torchvision.datasets.STL10`` without md5 check or download: ``folds`` (0..9) keeps one of the
    predefined 1k-image training folds of ``fold_indices.txt``; ``data`` is N×3×96×96 uint8 (CHW), ``labels`` an
    int64 array (0..9, -1 for unlabelled images), ``classes`` the lines of ``class_names.txt`` (else the standard
    names); items are ``(PIL image, label)``.
    """

    base_folder: ClassVar[str] = STL10_FOLDER
    splits: ClassVar[tuple[str, ...]] = tuple(_FILES)

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        folds: int | None = None,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        if split not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}")
        if folds is not None and folds not in range(STL10_NUM_FOLDS):
            raise ValueError(f"folds must be None or in [0, {STL10_NUM_FOLDS}), got {folds!r}")
        self.split, self.folds = split, folds
        uses_folds = folds is not None and split != "test"  # folds select training images only, as in torchvision
        self._check_layout((*_FILES[split], *(("fold_indices.txt",) if uses_folds else ())))
        parts = []
        if split != "unlabeled":
            parts.append(self._labelled("test") if split == "test" else self._labelled("train", folds))
        if split.endswith("unlabeled"):
            unlabeled = self._read_images("unlabeled_X.bin")
            parts.append((unlabeled, np.full(len(unlabeled), -1, dtype=np.int64)))
        data, labels = parts[0] if len(parts) == 1 else (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
        self.data: np.ndarray = data
        self.labels: np.ndarray = labels
        names_file = self.dataset_dir / "class_names.txt"
        self.classes: list[str] = names_file.read_text().splitlines() if names_file.is_file() else list(STL10_CLASSES)

    @property
    def dataset_dir(self) -> Path:
        """The dataset folder, ``root/stl10_binary``."""
        return Path(self.root) / self.base_folder

    def _check_layout(self, needed: Sequence[str]) -> None:
        """Raise one line naming the expected layout (and what to pass instead) when files are missing."""
        missing = missing_files(self.dataset_dir, needed)
        if not missing:
            return
        root = Path(self.root)
        hint = f"; missing {', '.join(missing)}"
        if root.name == self.base_folder or (root / missing[0]).is_file():
            hint = f"; {root} looks like the {self.base_folder} folder itself: pass its parent {root.parent}"
        raise layout_error(
            f"STL-10 not found under {root}: expected {root}/{self.base_folder}/{_LAYOUT} "
            f"(the binary layout of stl10_binary.tar.gz){hint}"
        )

    def _labelled(self, prefix: str, fold: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of ``<prefix>_X.bin``/``<prefix>_y.bin``, restricted to one training fold if given."""
        data, labels = self._read_images(f"{prefix}_X.bin"), self._read_labels(f"{prefix}_y.bin")
        if len(labels) != len(data):
            raise layout_error(f"{self.dataset_dir}: {len(data)} {prefix} images but {len(labels)} labels")
        if fold is None:
            return data, labels
        keep = self._fold(fold)
        return data[keep], labels[keep]

    def _read_images(self, name: str) -> np.ndarray:
        """N×3×96×96 uint8 images of one X file (stored column-major per image, so H and W are swapped back)."""
        raw = np.fromfile(self.dataset_dir / name, dtype=np.uint8)
        if raw.size % _IMAGE_BYTES:
            raise layout_error(f"{self.dataset_dir / name} is {raw.size} bytes, not a multiple of 3×96×96")
        return raw.reshape(-1, 3, *STL10_SIZE).transpose(0, 1, 3, 2)

    def _read_labels(self, name: str) -> np.ndarray:
        """Labels 0..9 (int64) of one y file, which stores them as uint8 1..10."""
        return np.fromfile(self.dataset_dir / name, dtype=np.uint8).astype(np.int64) - 1

    def _fold(self, fold: int) -> np.ndarray:
        """Training-image indices of one line of ``fold_indices.txt``."""
        lines = (self.dataset_dir / "fold_indices.txt").read_text().splitlines()
        if len(lines) <= fold:
            raise layout_error(f"{self.dataset_dir / 'fold_indices.txt'} has {len(lines)} lines, no fold {fold}")
        return np.array(lines[fold].split(), dtype=np.int64)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """Return ``(image, label)`` with the transforms applied; the image is a PIL RGB image."""
        img, target = Image.fromarray(np.transpose(self.data[index], (1, 2, 0))), int(self.labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        """Number of images in the split."""
        return len(self.data)

    def extra_repr(self) -> str:
        """The split line of ``repr``, as torchvision prints it."""
        return f"Split: {self.split}"


def _x_bytes(images: np.ndarray) -> bytes:
    """N×3×96×96 images as an X file: raw uint8, column-major per image."""
    return np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tobytes()


def _chw(images: np.ndarray, what: str) -> np.ndarray:
    """Check that `images` is N×3×96×96 uint8, the reader's ``data`` layout, and return it as an array."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != (3, *STL10_SIZE):
        raise ValueError(f"{what} must be uint8 of shape (N, 3, 96, 96), got {images.dtype} {images.shape}")
    return images


def write_stl10(
    root: str | Path,
    images_train: np.ndarray,
    labels_train: Sequence[int],
    images_test: np.ndarray,
    labels_test: Sequence[int],
    *,
    images_unlabeled: np.ndarray | None = None,
    class_names: Sequence[str] = STL10_CLASSES,
    folds: Sequence[Sequence[int]] | None = None,
) -> Path:
    """Write N×3×96×96 uint8 images (`STL10.data`'s layout) and 0-based labels as ``root/stl10_binary``; return it.

    ``folds`` are the 10 lists of training indices of ``fold_indices.txt`` (default: the training set cut into 10
    consecutive parts). An identical existing copy is left alone; a different non-empty folder is never overwritten.
    """
    train, test = _chw(images_train, "images_train"), _chw(images_test, "images_test")
    unlabeled = _chw(images_unlabeled, "images_unlabeled") if images_unlabeled is not None else train[:0]
    n_classes = len(class_names)
    y_train = np.asarray(check_labels(labels_train, len(train), n_classes, "labels_train"), np.uint8) + 1
    y_test = np.asarray(check_labels(labels_test, len(test), n_classes, "labels_test"), np.uint8) + 1
    folds = folds if folds is not None else np.array_split(np.arange(len(train)), STL10_NUM_FOLDS)
    files = {
        "train_X.bin": _x_bytes(train),
        "train_y.bin": y_train.tobytes(),
        "test_X.bin": _x_bytes(test),
        "test_y.bin": y_test.tobytes(),
        "unlabeled_X.bin": _x_bytes(unlabeled),
        "class_names.txt": "".join(f"{name}\n" for name in class_names).encode(),
        "fold_indices.txt": "".join(" ".join(map(str, fold)) + "\n" for fold in folds).encode(),
    }
    return publish_files(Path(root) / STL10_FOLDER, files)


def write_fake_stl10(
    root: str | Path, *, n_train: int = 20, n_test: int = 10, n_unlabeled: int = 4, seed: int = 0
) -> Path:
    """Write a tiny STL-10 copy of random 96×96 images with labels cycling 0..9; return its folder."""
    rng = np.random.default_rng(seed)

    def chw(n: int) -> np.ndarray:
        return random_images(rng, n, STL10_SIZE).transpose(0, 3, 1, 2)

    return write_stl10(
        root,
        chw(n_train),
        np.arange(n_train) % len(STL10_CLASSES),
        chw(n_test),
        np.arange(n_test) % len(STL10_CLASSES),
        images_unlabeled=chw(n_unlabeled),
    )
