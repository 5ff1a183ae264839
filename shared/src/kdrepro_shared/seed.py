"""Seeding of every RNG a run draws from (python, numpy, torch on all devices) and of DataLoader workers."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from kdrepro_shared.device import set_deterministic


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python's `random`, numpy's global RNG and torch (`torch.manual_seed` seeds CPU and every CUDA device).

    PYTHONHASHSEED is exported for child processes only: str/bytes hashing of the running interpreter was fixed at
    start-up, so export it in the shell for set-iteration order to repeat. `deterministic` calls `set_deterministic`.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        set_deterministic(True)


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: seed numpy and `random` from the worker's torch seed, as PyTorch's docs advise.

    Each worker's torch seed is `base_seed + worker_id` (base from the loader's generator), so workers differ and
    runs repeat. Torch >= 1.9 seeds numpy itself; this keeps the documented recipe explicit on every version.
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def make_generator(seed: int) -> torch.Generator:
    """A CPU `torch.Generator` seeded with `seed`, for a DataLoader's shuffling and its workers' base seed."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
