"""Pieces the CIFAR loaders share: the seed's transforms, its loader settings and CRD's negative sampler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from kdrepro_shared.errors import KdReproError

DATA_FOLDER = "./data"
# The seed normalises CIFAR-100 *and* CIFAR-10 with these CIFAR-100 statistics.
CIFAR_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR_STD = (0.2675, 0.2565, 0.2761)


def cifar_train_transform() -> transforms.Compose:
    """RandomCrop(32, pad 4) → horizontal flip → tensor → normalise, as the seed's CIFAR train sets."""
    return transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(CIFAR_MEAN, CIFAR_STD),
        ]
    )


def cifar_test_transform() -> transforms.Compose:
    """Tensor → normalise, as the seed's CIFAR test sets."""
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])


def resized_transforms(mean: Sequence[float], std: Sequence[float]) -> tuple[transforms.Compose, transforms.Compose]:
    """The transfer sets' (train, test) transforms: resize to 32×32 first, then the CIFAR recipe with `mean`/`std`."""
    train = transforms.Compose(
        [
            transforms.Resize((32, 32)),
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    test = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor(), transforms.Normalize(mean, std)])
    return train, test


def make_test_loader(test_set: Dataset, batch_size: int, num_workers: int) -> DataLoader:
    """The seed's test loader: no shuffle, half the train batch size and half the workers (both truncated)."""
    return DataLoader(test_set, batch_size=int(batch_size / 2), shuffle=False, num_workers=int(num_workers / 2))


class InstanceSampleMixin:
    """CRD's sampler for a CIFAR-like set: items are (img, target, index, sample_idx) = positive then `k` negatives.

    The host class provides ``data``, ``targets``, ``transform`` and ``target_transform``.
    """

    data: np.ndarray
    targets: list[int]
    transform: Any
    target_transform: Any

    def init_sampling(self, num_classes: int, k: int, mode: str, is_sample: bool, percent: float) -> None:
        """Index every class's positives and its negatives (all other classes), optionally keeping `percent` of them.

        The seed stacked the per-class arrays with ``np.asarray``; numpy ≥ 2 refuses that for unequal class sizes, so
        they stay a list of arrays (the same values, and the same draws from numpy's global RNG).
        """
        self.k, self.mode, self.is_sample = k, mode, is_sample
        positives: list[list[int]] = [[] for _ in range(num_classes)]
        for i, label in enumerate(self.targets):
            positives[label].append(i)
        negatives = [[i for j in range(num_classes) if j != c for i in positives[j]] for c in range(num_classes)]
        self.cls_positive = [np.asarray(p) for p in positives]
        self.cls_negative = [np.asarray(n) for n in negatives]
        if 0 < percent < 1:
            n = int(len(self.cls_negative[0]) * percent)
            self.cls_negative = [np.random.permutation(self.cls_negative[c])[0:n] for c in range(num_classes)]

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        """Return (img, target, index) without sampling, else (img, target, index, [positive, k negatives])."""
        img, target = Image.fromarray(self.data[index]), self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        if not self.is_sample:
            return img, target, index
        return img, target, index, self.contrast_indices(index, target)

    def contrast_indices(self, index: int, target: int) -> np.ndarray:
        """[positive, k negatives] for item `index` of class `target`, drawn from numpy's global RNG."""
        if self.mode == "exact":
            pos_idx = index
        elif self.mode == "relax":
            pos_idx = np.random.choice(self.cls_positive[target], 1)[0]
        else:
            raise KdReproError(f"CRD --mode must be exact or relax, got {self.mode!r}")
        replace = self.k > len(self.cls_negative[target])
        neg_idx = np.random.choice(self.cls_negative[target], self.k, replace=replace)
        return np.hstack((np.asarray([pos_idx]), neg_idx))
