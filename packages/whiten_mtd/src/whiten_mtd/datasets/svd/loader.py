"""Distributed SVD loaders: one random frame per training video (distillation) and per-rank video slices (test).

Id lists are broadcast from rank 0 on the process group's own device (the original hard-coded CUDA); without a
process group everything runs as rank 0 of 1.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from kdrepro_shared.distributed import comm_device, get_rank, get_world_size, is_dist_avail_and_initialized
from whiten_mtd.datasets.gld import DistributedSampler  # the original repeats the GLD sampler here

__all__ = [
    "DistributedDistillLoader",
    "DistributedFrameSampler",
    "DistributedSampler",
    "DistributedSeqSampler",
    "DistributedTestLoader",
    "broadcast_objects",
]


def broadcast_objects(objects: list[Any]) -> list[Any]:
    """Rank 0's picklable `objects` on every rank (unchanged without a process group)."""
    if is_dist_avail_and_initialized():
        dist.broadcast_object_list(objects, src=0, device=comm_device())
    return objects


class DistributedFrameSampler(DistributedSampler):
    """Batches of `batch_size` (video_id, frame) keys: this rank's videos, one uniformly random frame each.

    Frames come from python's global `random`, which the constructor seeds with the rank (as the original).
    """

    def __init__(  # noqa: PLR0917 -- the original's signature
        self,
        rank: int,
        num_replicas: int,
        batch_size: int,
        ids: Sequence[str],
        frm_cnt: Mapping[str, int],
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
    ) -> None:
        super().__init__(rank, num_replicas, batch_size, ids, seed=seed, shuffle=shuffle, drop_last=drop_last)
        random.seed(rank)
        self.frm_cnt = frm_cnt
        logging.getLogger(f"datasets.svd.dist_frame_sampler.{rank}").info(self)

    def __str__(self) -> str:
        return (
            f"| Distributed Frame Sampler | {self._num_samples} samples | iters {len(self)} | "
            f"{self._batch_size} per batch"
        )

    def __iter__(self) -> Iterator[list[tuple[str, int]]]:
        subset = self._get_subset()
        for start in range(0, len(subset), self._batch_size):
            video_ids = subset[start : start + self._batch_size]
            frames = [random.randint(0, self.frm_cnt[vid] - 1) for vid in video_ids]
            yield list(zip(video_ids, frames, strict=True))


class DistributedSeqSampler(Sampler):
    """This rank's ids (`ids[rank::world]`) in order, in batches of `batch_size`; `kind` only names it in logs."""

    def __init__(self, rank: int, num_replicas: int, batch_size: int, ids: Sequence[str], kind: str = "test") -> None:
        self._rank = rank
        self._batch_size = batch_size
        self._id_list = list(ids[rank : len(ids) : num_replicas])
        self.kind = kind
        logging.getLogger(f"datasets.svd.dist_loader.dist_seq_sampler.{rank}").info(self)

    def __len__(self) -> int:
        return math.ceil(len(self._id_list) / self._batch_size)

    def __str__(self) -> str:
        count = len(self._id_list)
        return f"| Test {self.kind} Sampler | {count} videos | iters {len(self)} | batch size {self._batch_size}"

    def __iter__(self) -> Iterator[list[str]]:
        for start in range(0, len(self._id_list), self._batch_size):
            yield self._id_list[start : start + self._batch_size]


def _two_view_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor, str]]) -> tuple[Any, Any, tuple[str, ...]]:
    """Stack each view; keep the frame names."""
    frames1, frames2, names = zip(*batch, strict=True)
    return torch.stack(frames1, dim=0), torch.stack(frames2, dim=0), names


def _video_collate(batch: Sequence[tuple[torch.Tensor, str, int]]) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """Concatenate all frames of the batch; return (frames, frames per video, video ids)."""
    data, video_ids, counts = zip(*batch, strict=True)
    return torch.cat(data, dim=0), torch.tensor(counts, dtype=torch.long), video_ids


class DistributedDistillLoader:
    """Two-view frame batches over the training videos, one random frame per video per epoch."""

    def __init__(
        self,
        dataset: Dataset,
        train_ids: Sequence[str],
        frm_cnt: Mapping[str, int],
        batch_size: int = 64,
        num_workers: int = 4,
    ) -> None:
        self._sampler = DistributedFrameSampler(
            get_rank(), get_world_size(), batch_size, train_ids, frm_cnt, seed=0, shuffle=True, drop_last=True
        )
        self._train_loader = DataLoader(
            dataset,
            batch_sampler=self._sampler,
            collate_fn=_two_view_collate,
            num_workers=num_workers,
            pin_memory=torch.cuda.is_available(),
        )

    @property
    def batch_sampler(self) -> DistributedFrameSampler:
        """The frame sampler (for `set_epoch`)."""
        return self._sampler

    def __len__(self) -> int:
        return len(self._train_loader)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._train_loader)

    @classmethod
    def build(cls, dataset: Dataset, meta: Any, batch_size: int = 64, num_workers: int = 4) -> DistributedDistillLoader:
        """Loader over `meta.train_ids` (unlabeled videos are not used), ids broadcast from rank 0."""
        (train_ids,) = broadcast_objects([meta.train_ids if get_rank() == 0 else None])
        return cls(dataset, train_ids, meta.frm_cnt, batch_size=batch_size, num_workers=num_workers)


class DistributedTestLoader:
    """Per-rank video loaders of the test queries, labeled candidates and unlabeled distractors."""

    def __init__(  # noqa: PLR0917 -- the original's signature
        self,
        dataset: Dataset,
        query_ids: Sequence[str],
        labeled_ids: Sequence[str],
        unlabeled_ids: Sequence[str],
        batch_size: int = 64,
        num_workers: int = 4,
    ) -> None:
        rank, world = get_rank(), get_world_size()

        def loader(ids: Sequence[str], kind: str) -> DataLoader:
            sampler = DistributedSeqSampler(rank, world, batch_size, ids, kind)
            return DataLoader(
                dataset,
                batch_sampler=sampler,
                collate_fn=_video_collate,
                num_workers=num_workers,
                pin_memory=torch.cuda.is_available(),
            )

        self._query_loader = loader(query_ids, "Query")
        self._labeled_loader = loader(labeled_ids, "Labeled")
        self._unlabeled_loader = loader(unlabeled_ids, "UnLabeled")

    @property
    def query_loader(self) -> DataLoader:
        """This rank's test queries."""
        return self._query_loader

    @property
    def labeled_loader(self) -> DataLoader:
        """This rank's labeled candidates."""
        return self._labeled_loader

    @property
    def unlabeled_loader(self) -> DataLoader:
        """This rank's unlabeled distractors."""
        return self._unlabeled_loader

    @classmethod
    def build(cls, dataset: Dataset, meta: Any, batch_size: int = 64, num_workers: int = 4) -> DistributedTestLoader:
        """Loaders of `test_query_ids`, `test_labeled_ids` and `unlabeled_ids`, lists broadcast from rank 0."""
        own = [meta.test_query_ids, meta.test_labeled_ids, meta.unlabeled_ids] if get_rank() == 0 else [None] * 3
        query_ids, labeled_ids, unlabeled_ids = broadcast_objects(own)
        return cls(dataset, query_ids, labeled_ids, unlabeled_ids, batch_size, num_workers)
