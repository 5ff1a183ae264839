"""Google Landmarks v2 (train-clean) for distillation and PCA learning (the data classes of the original scripts).

Layout under the GLDv2 root: `meta/train_clean.csv` (header `landmark_id,images`, images = space-separated ids),
`meta/train_clean_ids.txt` (one id per line; used for PCA learning) and `train/<a>/<b>/<c>/<id>.jpg`.
A training sample is a landmark: the group sampler draws two of its images, so positives are two views of one place.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from kdrepro_shared.errors import DatasetLayoutError

TRAIN_CLEAN_CSV = "meta/train_clean.csv"
TRAIN_CLEAN_IDS = "meta/train_clean_ids.txt"
LAYOUT = "meta/train_clean.csv, meta/train_clean_ids.txt and train/<a>/<b>/<c>/<id>.jpg"

Transform = Callable[[Image.Image], Any]


def _require(path: Path) -> Path:
    """Return `path` if it is a file, else raise a layout error naming the expected GLDv2 layout."""
    if not path.is_file():
        raise DatasetLayoutError(f"{str(path)!r} not found: a GLDv2 root must hold {LAYOUT}")
    return path


def read_landmark_groups(gld_root: str | os.PathLike[str]) -> list[list[str]]:
    """Image-id lists of every landmark in `meta/train_clean.csv` that has at least two images (file order)."""
    csv_path = _require(Path(gld_root) / TRAIN_CLEAN_CSV)
    frame = pd.read_csv(csv_path, dtype={"images": str})
    if "images" not in frame.columns:
        raise DatasetLayoutError(f"{str(csv_path)!r} has no 'images' column (expected header landmark_id,images)")
    groups = [str(images).split(" ") for images in frame["images"].dropna()]
    return [group for group in groups if len(group) >= 2]


def read_image_ids(gld_root: str | os.PathLike[str]) -> list[str]:
    """The image ids listed in `meta/train_clean_ids.txt`, one per line, stripped."""
    ids_path = _require(Path(gld_root) / TRAIN_CLEAN_IDS)
    with ids_path.open(encoding="utf-8") as handle:
        return [line.strip() for line in handle]


def image_path(train_root: str | os.PathLike[str], img_id: str) -> Path:
    """`<train_root>/<id[0]>/<id[1]>/<id[2]>/<id>.jpg`, the nested layout of the GLDv2 tar files."""
    return Path(train_root, img_id[0], img_id[1], img_id[2], f"{img_id}.jpg")


def load_image(train_root: str | os.PathLike[str], img_id: str, transform: Transform | None) -> Any:
    """Open image `img_id` as RGB and apply `transform`; a missing file names the layout."""
    path = image_path(train_root, img_id)
    if not path.is_file():
        raise DatasetLayoutError(f"image {img_id!r} not found at {str(path)!r} (expected train/<a>/<b>/<c>/<id>.jpg)")
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    return rgb if transform is None else transform(rgb)


class GLDImageDataset(Dataset):
    """Images addressed by their id (the group sampler yields ids); an item is `(image, id)`."""

    def __init__(self, root_path: str | os.PathLike[str], transform: Transform | None = None) -> None:
        super().__init__()
        self.root_path = root_path
        self.t = transform

    def __getitem__(self, img_id: str) -> tuple[Any, str]:
        return load_image(self.root_path, img_id, self.t), img_id


class GLDv2(Dataset):
    """A list of image ids addressed by position (PCA learning); an item is `(image, position)`."""

    def __init__(
        self, root_path: str | os.PathLike[str], img_id_list: Sequence[str], transform: Transform | None = None
    ) -> None:
        super().__init__()
        self.root_path = root_path
        self.img_id_list = list(img_id_list)
        self.t = transform

    def __getitem__(self, i: int) -> tuple[Any, int]:
        return load_image(self.root_path, self.img_id_list[i], self.t), i

    def __len__(self) -> int:
        return len(self.img_id_list)


class DistributedSampler(Sampler):
    """Per-rank batches of samples: an epoch-seeded permutation (seed + epoch), cut to a multiple of the world size.

    With `drop_last` and a remainder, each rank gets ceil((L - W) / W) samples (the original's count); batches are
    `batch_size` long except possibly the last, and every rank runs the same number of iterations.
    """

    def __init__(  # noqa: PLR0917 -- the original's positional signature
        self,
        rank: int,
        num_replicas: int,
        batch_size: int,
        samples: Sequence[Any],
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
    ) -> None:
        self._rank = rank
        self._num_replicas = num_replicas
        self._batch_size = batch_size
        self._samples = samples
        self._seed = seed
        self._shuffle = shuffle
        self._drop_last = drop_last
        self._epoch = 0
        total = len(samples)
        if drop_last and total % num_replicas != 0:
            self._num_samples = math.ceil((total - num_replicas) / num_replicas)
        else:
            self._num_samples = math.ceil(total / num_replicas)
        self._total_size = self._num_samples * num_replicas

    def __len__(self) -> int:
        return math.ceil(self._num_samples / self._batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of `epoch` (gld_distill passes the 0-based epoch, svd_distill the 1-based one)."""
        self._epoch = epoch

    def _get_subset(self) -> list[Any]:
        """This rank's samples for the current epoch, in order."""
        if self._shuffle:
            generator = torch.Generator()
            generator.manual_seed(self._seed + self._epoch)
            indices = torch.randperm(len(self._samples), generator=generator).tolist()
        else:
            indices = list(range(len(self._samples)))
        if self._drop_last:
            indices = indices[: self._total_size]
        else:
            missing = self._total_size - len(indices)
            indices += (indices * math.ceil(missing / max(len(indices), 1)))[:missing]
        return [self._samples[i] for i in indices[self._rank : self._total_size : self._num_replicas]]


class DistributedGroupSampler(DistributedSampler):
    """Batches of image ids: for b landmarks, their first drawn images then their second drawn images (2b ids).

    The two distinct images of each landmark are drawn with a Python RNG seeded with the rank when the sampler is
    built (the original seeds the global `random` module the same way; this one keeps its own generator).
    """

    def __init__(  # noqa: PLR0917 -- the original's positional signature
        self,
        rank: int,
        num_replicas: int,
        batch_size: int,
        groups: Sequence[Sequence[str]],
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
    ) -> None:
        super().__init__(rank, num_replicas, batch_size, groups, seed=seed, shuffle=shuffle, drop_last=drop_last)
        self._pair_rng = random.Random(rank)
        logging.getLogger(f"dist_group_sampler.{rank}").info(self)

    def __str__(self) -> str:
        return (
            f"| Distributed Group Sampler | {self._num_samples} groups | iters {len(self)} | "
            f"{self._batch_size} per batch"
        )

    def __iter__(self) -> Iterator[list[str]]:
        subset = self._get_subset()
        for start in range(0, len(subset), self._batch_size):
            pairs = [self._pair_rng.sample(list(group), 2) for group in subset[start : start + self._batch_size]]
            yield [pair[0] for pair in pairs] + [pair[1] for pair in pairs]
