"""The benchmark timer counts only the timed steps and reports items per second."""

from __future__ import annotations

import time

import torch

from kdrepro_shared.benchmark import device_name, throughput


def test_throughput_times_only_the_timed_steps() -> None:
    calls: list[int] = []

    def run(steps: int) -> None:
        calls.append(steps)
        time.sleep(0.02 * steps)

    rate = throughput(run, warmup=3, iters=5, items=8, device=torch.device("cpu"))
    assert calls == [3, 5]
    assert 8 * 5 / (0.02 * 5) / 2 < rate <= 8 * 5 / (0.02 * 5)


def test_device_name_gives_the_cpu_thread_count() -> None:
    assert device_name(torch.device("cpu")) == f"CPU, {torch.get_num_threads()} torch threads"
