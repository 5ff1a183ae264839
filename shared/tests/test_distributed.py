"""Tests of kdrepro_shared.distributed: single-process behaviour, and two real gloo ranks on 127.0.0.1.

The two launch styles are both exercised: `spawn` (the originals' mp.spawn) and torchrun's environment variables.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from kdrepro_shared.distributed import (
    TORCHRUN_ENV,
    DistInfo,
    DistributedEvalSampler,
    all_gather_uneven,
    all_reduce_mean,
    barrier,
    cleanup,
    comm_device,
    free_port,
    get_rank,
    get_world_size,
    init_distributed,
    is_dist_avail_and_initialized,
    is_main_process,
    spawn,
)
from kdrepro_shared.errors import KdReproError

TESTS = Path(__file__).resolve().parent
WORKER_TIMEOUT_S = 120


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The `_dist_worker` helper imported by name, so spawned children (which get our sys.path) can unpickle it."""
    monkeypatch.syspath_prepend(str(TESTS))
    return importlib.import_module("_dist_worker")


@pytest.fixture
def no_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run as if not launched by torchrun."""
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    yield
    cleanup()


def read_ranks(out_dir: Path, world_size: int) -> list[dict]:
    """What each rank recorded, by rank."""
    return [json.loads((out_dir / f"rank{rank}.json").read_text()) for rank in range(world_size)]


def check_two_rank_collectives(results: list[dict]) -> None:
    """Both ranks saw the expected uneven gather, mean, eval sampler split, ordered predictions and meter sync."""
    three = [[float(i), float(i)] for i in range(3)]
    five = [[100.0 + i, 100.0 + i] for i in range(5)]
    for rank, result in enumerate(results):
        assert result["rank"] == rank
        assert result["world_size"] == 2
        assert result["main"] == (rank == 0)
        assert result["backend"] == "gloo"
        assert result["comm_device"] == "cpu"
        assert result["gathered"] == [three, five]
        assert result["mean"] == [1.0, 1.0]
        assert result["all_predictions"] == [10.0 * i for i in range(7)]
        assert result["meter"] == [3, 5.0]  # counts 1 + 2, totals 1*1 + 2*2
    assert results[0]["sampler_indices"] == [0, 1, 2, 3]
    assert results[1]["sampler_indices"] == [4, 5, 6]


@pytest.mark.usefixtures("no_torchrun_env")
def test_single_process_without_env() -> None:
    info = init_distributed()
    assert info == DistInfo(rank=0, world_size=1, local_rank=0, device=info.device, distributed=False)
    assert info.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert init_distributed(device="cpu").device == torch.device("cpu")
    assert not is_dist_avail_and_initialized()
    assert (get_rank(), get_world_size(), is_main_process()) == (0, 1, True)
    barrier()
    assert comm_device() == torch.device("cpu")
    tensor = torch.arange(4)
    assert all_reduce_mean(tensor) is tensor
    assert all_gather_uneven(tensor) == [tensor]
    assert list(DistributedEvalSampler(range(5))) == [0, 1, 2, 3, 4]


@pytest.mark.usefixtures("no_torchrun_env")
def test_incomplete_torchrun_env_is_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(KdReproError, match="LOCAL_RANK, MASTER_ADDR, MASTER_PORT unset"):
        init_distributed()


@pytest.mark.parametrize("size", [0, 1, 6, 7, 10])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
def test_eval_sampler_partitions_in_order(size: int, replicas: int) -> None:
    parts = [list(DistributedEvalSampler(range(size), num_replicas=replicas, rank=rank)) for rank in range(replicas)]
    assert [i for part in parts for i in part] == list(range(size))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert [len(DistributedEvalSampler(range(size), replicas, rank)) for rank in range(replicas)] == list(
        map(len, parts)
    )


def test_eval_sampler_rejects_bad_rank() -> None:
    with pytest.raises(KdReproError, match=r"rank 2 is outside \[0, 2\)"):
        DistributedEvalSampler(range(4), num_replicas=2, rank=2)


def test_free_port_is_bindable() -> None:
    assert 0 < free_port() < 65536


def test_spawn_two_gloo_ranks(worker: ModuleType, tmp_path: Path) -> None:
    spawn(worker.spawned, nprocs=2, args=(str(tmp_path), "cpu"), device="cpu")
    results = read_ranks(tmp_path, 2)
    assert [r["info"] for r in results] == [[0, 2, 0, "cpu", True], [1, 2, 1, "cpu", True]]
    check_two_rank_collectives(results)


def test_init_from_torchrun_env(worker: ModuleType, tmp_path: Path) -> None:
    port = free_port()
    fork = multiprocessing.get_context("fork")  # forked ranks skip re-importing torch; they set the env themselves
    ranks = [fork.Process(target=worker.torchrun_rank, args=(rank, port, str(tmp_path))) for rank in range(2)]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(WORKER_TIMEOUT_S)
        process.kill()
    assert [process.exitcode for process in ranks] == [0, 0]
    results = read_ranks(tmp_path, 2)
    assert [r["info"] for r in results] == [[0, 2, 0, "cpu", True], [1, 2, 1, "cpu", True]]
    check_two_rank_collectives(results)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_spawn_nccl_on_one_gpu(worker: ModuleType, tmp_path: Path) -> None:
    spawn(worker.spawned, nprocs=1, args=(str(tmp_path), "auto"))
    (result,) = read_ranks(tmp_path, 1)
    assert result["info"] == [0, 1, 0, "cuda:0", True]
    assert result["backend"] == "nccl"
    assert result["comm_device"] == "cuda:0"
    assert result["all_predictions"] == [10.0 * i for i in range(7)]
    assert result["meter"] == [1, 1.0]
