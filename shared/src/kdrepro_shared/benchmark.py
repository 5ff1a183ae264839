"""Timing for the packages' benchmark scripts: throughput of a step function, CUDA work included."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work, so wall time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(run: Callable[[int], None], *, warmup: int, iters: int, items: int, device: torch.device) -> float:
    """Items/s of `run(n)` (n steps of `items` items each) over `iters` timed steps, after `warmup` untimed ones."""
    run(warmup)
    synchronize(device)
    start = time.perf_counter()
    run(iters)
    synchronize(device)
    return iters * items / (time.perf_counter() - start)


def device_name(device: torch.device) -> str:
    """What a benchmark table names as its hardware: the GPU's name, or the CPU with its torch thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} torch threads"
