"""Epoch-wise loaders of the original: a re-creatable `SimpleDataloader`, a sampler-driven one and a balanced sampler.

`SimpleDataloader.__call__` builds a fresh ``torch.utils.data.DataLoader`` (shuffle and drop_last in training), over a
random subset (or a tiled list) when the requested epoch size differs from the dataset size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.utils.data
from torch.utils.data import DataLoader
from torch.utils.data.sampler import BatchSampler


def generate_element_list(list_size: int, dataset_size: int) -> list[int]:
    """Indices for an epoch of `list_size` items: all, a random subset without replacement, or whole copies + rest."""
    if list_size == dataset_size:
        return list(range(dataset_size))
    if list_size < dataset_size:
        return np.random.choice(dataset_size, list_size, replace=False).tolist()
    repeats, residual = divmod(list_size, dataset_size)
    elements = list(range(dataset_size)) * repeats
    if residual:
        elements += np.random.choice(dataset_size, residual, replace=False).tolist()
    return elements


class SimpleDataloader:
    """Makes a new DataLoader per epoch; ``len`` is the number of batches, ``epoch_size // batch_size``."""

    def __init__(
        self, dataset: Any, batch_size: int, train: bool, num_workers: int = 4, epoch_size: int | None = None
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.dataset_size = len(dataset)
        self.epoch_size = epoch_size if epoch_size else self.dataset_size
        self.train = train

    def get_iterator(self, epoch: int = 0) -> DataLoader:
        """A DataLoader over the epoch's elements (shuffled, last partial batch dropped, when training)."""
        dataset = self.dataset
        if self.epoch_size != self.dataset_size:
            dataset = torch.utils.data.Subset(self.dataset, generate_element_list(self.epoch_size, self.dataset_size))
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=self.train,
            num_workers=self.num_workers,
            drop_last=self.train,
        )

    def __call__(self, epoch: int = 0) -> DataLoader:
        """Same as `get_iterator` (the epoch argument is unused, as in the original)."""
        return self.get_iterator()

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.epoch_size // self.batch_size


class DataloaderSampler:
    """One DataLoader driven by the dataset's own ``sampler`` attribute (``use_ds_dataloader`` configs)."""

    def __init__(self, dataset: Any, batch_size: int, train: bool, num_workers: int = 4) -> None:
        self.dataset = dataset
        self.sampler = dataset.sampler
        self.dataset_size = len(self.sampler)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train = train
        self.dataloader = DataLoader(dataset, batch_size, sampler=self.sampler, num_workers=num_workers)

    def get_iterator(self, epoch: int = 0) -> DataLoader:
        """The single DataLoader (re-iterated every epoch)."""
        return self.dataloader

    def __call__(self, epoch: int = 0) -> DataLoader:
        """Same as `get_iterator`."""
        return self.get_iterator()

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.dataset_size // self.batch_size


class BalancedBatchSampler(BatchSampler):
    """Batches of `n_classes` random classes × `n_samples` images each, cycling through each class's shuffled list."""

    def __init__(self, dataset: Any, n_classes: int, n_samples: int) -> None:
        labels = [label for _, label in DataLoader(dataset)]
        self.labels = torch.LongTensor(labels)
        label_array = self.labels.numpy()
        self.labels_set = list(set(label_array))
        self.label_to_indices = {label: np.where(label_array == label)[0] for label in self.labels_set}
        for label in self.labels_set:
            np.random.shuffle(self.label_to_indices[label])
        self.used_label_indices_count = dict.fromkeys(self.labels_set, 0)
        self.count = 0
        self.n_classes = n_classes
        self.n_samples = n_samples
        self.dataset = dataset
        self.batch_size = n_samples * n_classes

    def __iter__(self) -> Iterator[list[int]]:
        """Yield index lists until fewer than one batch of the dataset remains."""
        self.count = 0
        while self.count + self.batch_size < len(self.dataset):
            indices: list[int] = []
            for class_ in np.random.choice(self.labels_set, self.n_classes, replace=False):
                start = self.used_label_indices_count[class_]
                indices.extend(self.label_to_indices[class_][start : start + self.n_samples])
                self.used_label_indices_count[class_] += self.n_samples
                if self.used_label_indices_count[class_] + self.n_samples > len(self.label_to_indices[class_]):
                    np.random.shuffle(self.label_to_indices[class_])
                    self.used_label_indices_count[class_] = 0
            yield indices
            self.count += self.n_classes * self.n_samples

    def __len__(self) -> int:
        """Batches per pass."""
        return len(self.dataset) // self.batch_size
