"""Swin's `SubsetRandomSampler`, which the original imports but never uses (its val sampler is DistributedSampler)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class SubsetRandomSampler(Sampler[int]):
    """Samples the given indices in a fresh random order (torch RNG) on every pass, without replacement."""

    def __init__(self, indices: Sequence[int]) -> None:
        self.epoch = 0
        self.indices = indices

    def __iter__(self) -> Iterator[int]:
        return (self.indices[i] for i in torch.randperm(len(self.indices)))

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Record the epoch (the order does not depend on it)."""
        self.epoch = epoch
