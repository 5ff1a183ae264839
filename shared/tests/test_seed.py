"""Tests of kdrepro_shared.seed: global seeding of the three RNGs and reproducible, distinct DataLoader workers."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from kdrepro_shared import seed as seed_module
from kdrepro_shared.seed import make_generator, seed_everything, seed_worker


def draws() -> tuple[float, float, list[float]]:
    """One draw from each RNG seed_everything seeds."""
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


class RandomAugment(Dataset):
    """Items carrying the loading worker's id and a numpy and a python "random augmentation" draw."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> tuple[int, int, float, float]:
        return index, get_worker_info().id, float(np.random.rand()), random.random()


def load_all(generator_seed: int) -> list[tuple[int, int, float, float]]:
    """Every item of a 2-worker DataLoader (forked workers, as on Linux by default) in loading order."""
    loader = DataLoader(
        RandomAugment(),
        batch_size=2,
        shuffle=True,
        num_workers=2,
        worker_init_fn=seed_worker,
        generator=make_generator(generator_seed),
        multiprocessing_context="fork",
    )
    return [
        (int(i), int(w), float(a), float(b))
        for index, worker, aug_np, aug_py in loader
        for i, w, a, b in zip(index, worker, aug_np, aug_py, strict=True)
    ]


def test_same_seed_same_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    seed_everything(123)
    first = draws()
    assert os.environ["PYTHONHASHSEED"] == "123"
    seed_everything(123)
    assert draws() == first
    seed_everything(124)
    assert draws() != first


def test_deterministic_flag_calls_set_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(seed_module, "set_deterministic", calls.append)
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    seed_everything(0)
    assert calls == []
    seed_everything(0, deterministic=True)
    assert calls == [True]


def test_make_generator() -> None:
    assert torch.equal(torch.randperm(10, generator=make_generator(5)), torch.randperm(10, generator=make_generator(5)))
    assert make_generator(5).initial_seed() == 5


def test_seed_worker_derives_from_torch_seed() -> None:
    torch.manual_seed(2**32 + 7)  # a worker's torch seed can exceed numpy's 32-bit range
    seed_worker(0)
    drawn = (float(np.random.rand()), random.random())
    np.random.seed(7)
    random.seed(7)
    assert drawn == (float(np.random.rand()), random.random())


def test_dataloader_workers_reproducible_and_distinct() -> None:
    first = load_all(generator_seed=0)
    assert load_all(generator_seed=0) == first
    assert sorted(item[0] for item in first) == list(range(8))
    by_worker = {worker: [item[2:] for item in first if item[1] == worker] for worker in (0, 1)}
    assert by_worker[0] and by_worker[1]
    assert by_worker[0] != by_worker[1]
    assert load_all(generator_seed=1) != first
