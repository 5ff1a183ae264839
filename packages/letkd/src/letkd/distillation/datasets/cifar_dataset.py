"""CIFAR-100 / CIFAR-10 datasets with the original's transforms (reflect-padded crops, CIFAR-100 statistics for both).

The original wrapped torchvision with ``download=True``, which md5-checks an existing folder and re-downloads on any
mismatch (so a rewritten or partial copy fails offline). Here an existing ``<data_dir>/<dataset folder>`` is read with
the checksum-free `kdrepro_shared.data` readers (same arrays, same items); only the default ``./datasets/CIFAR`` is
downloaded when absent, and any other `data_dir` without the layout is a one-line error naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torchvision.datasets
from PIL import Image
from torch.utils import data
from torchvision import transforms

from kdrepro_shared import data as shared_data
from kdrepro_shared.errors import DatasetLayoutError

_CIFAR_DATASET_DIR = "./datasets/CIFAR"
# The CIFAR-100 channel statistics; the original uses them for CIFAR-10 as well.
_CIFAR_MEAN_PIXEL = [0.5071, 0.4867, 0.4408]
_CIFAR_STD_PIXEL = [0.2675, 0.2565, 0.2761]

_READERS = {"CIFAR100": shared_data.CIFAR100, "CIFAR10": shared_data.CIFAR10}


def cifar_transforms(do_not_use_random_transf: bool) -> tuple[transforms.Compose, transforms.Compose]:
    """(train, test) transforms: reflect-padded random crop + flip for train, plain normalisation for test."""
    normalize = transforms.Normalize(mean=_CIFAR_MEAN_PIXEL, std=_CIFAR_STD_PIXEL)
    transform_test = transforms.Compose([transforms.ToTensor(), normalize])
    transform_train = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4, padding_mode="reflect"),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ]
    )
    return (transform_test if do_not_use_random_transf else transform_train), transform_test


def _download_default(version: str, data_dir: str) -> None:
    """Fetch the official archive into the default folder, as the original's ``download=True`` did."""
    try:
        torchvision.datasets.__dict__[version](data_dir, train=True, download=True)
    except OSError as err:  # urllib errors are OSErrors
        folder = _READERS[version].base_folder
        raise DatasetLayoutError(
            f"{version} not found under {data_dir} and the download failed ({err}): place the python version of the "
            f"dataset as {data_dir}/{folder}/ or pass data_dir=<folder holding {folder}>"
        ) from err


def read_cifar(version: str, data_dir: str | Path, train: bool) -> Any:
    """The torchvision-compatible dataset object (``data`` N×32×32×3 uint8, ``targets``) of one split."""
    reader = _READERS[version]
    if str(data_dir) == _CIFAR_DATASET_DIR and not (Path(data_dir) / reader.base_folder).is_dir():
        _download_default(version, str(data_dir))
    return reader(data_dir, train=train)


class CIFARbase(data.Dataset):
    """A CIFAR split as ``(transformed PIL image, int label)`` items; ``images``/``labels`` hold the raw arrays."""

    def __init__(
        self,
        data_dir: str | Path = _CIFAR_DATASET_DIR,
        split: str = "train",
        transform_train: Any = None,
        transform_test: Any = None,
        version: str = "CIFAR100",
    ) -> None:
        if split not in ("train", "val"):
            raise DatasetLayoutError(f"{version} split must be 'train' or 'val' (the official test set), got {split!r}")
        self.split = split
        self.name = f"{version}_{split}"
        self.transform_test = transform_test
        self.transform_train = transform_train
        self.transform = self.transform_train if split == "train" else self.transform_test
        print(self.transform)
        self.data = read_cifar(version, data_dir, train=split == "train")
        self.labels: list[int] = self.data.targets
        self.images: np.ndarray = self.data.data

    def __getitem__(self, index: int) -> tuple[Any, int]:
        """The image at `index` as a PIL image through the split's transform, and its label."""
        img = Image.fromarray(self.images[index])
        if self.transform is not None:
            img = self.transform(img)
        return img, self.labels[index]

    def __len__(self) -> int:
        """Number of images in the split."""
        return len(self.images)


class CIFAR100(CIFARbase):
    """CIFAR-100 train (augmented unless `do_not_use_random_transf`) or val (= official test set)."""

    def __init__(
        self, data_dir: str | Path = _CIFAR_DATASET_DIR, split: str = "train", do_not_use_random_transf: bool = False
    ) -> None:
        transform_train, transform_test = cifar_transforms(do_not_use_random_transf)
        super().__init__(data_dir, split, transform_train, transform_test, version="CIFAR100")


class CIFAR10(CIFARbase):
    """CIFAR-10 with the same transforms and (CIFAR-100) statistics as `CIFAR100`."""

    def __init__(
        self, data_dir: str | Path = _CIFAR_DATASET_DIR, split: str = "train", do_not_use_random_transf: bool = False
    ) -> None:
        transform_train, transform_test = cifar_transforms(do_not_use_random_transf)
        super().__init__(data_dir, split, transform_train, transform_test, version="CIFAR10")
