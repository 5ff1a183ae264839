"""Worker bodies for test_distributed, run in real gloo/nccl process groups on 127.0.0.1.

The test imports this module by name so `spawn` can pickle `spawned`; `torchrun_rank` runs in forked children.
Each rank writes what it saw to OUT_DIR/rank<r>.json for the test to check.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, TensorDataset

from kdrepro_shared.distributed import (
    DistributedEvalSampler,
    all_gather_uneven,
    all_reduce_mean,
    barrier,
    cleanup,
    comm_device,
    get_rank,
    get_world_size,
    init_distributed,
    is_main_process,
)
from kdrepro_shared.logging import SmoothedValue

NUM_SAMPLES = 7


def collectives(rank: int) -> dict:
    """Exercise the helpers inside a running group and return what this rank observed."""
    barrier()
    rows = torch.arange(3 + 2 * rank, dtype=torch.float32).unsqueeze(1).repeat(1, 2) + 100 * rank  # 3 rows, then 5
    gathered = all_gather_uneven(rows)
    mean = all_reduce_mean(torch.tensor([2.0 * rank, 1.0]))

    dataset = TensorDataset(torch.arange(NUM_SAMPLES, dtype=torch.float32))
    sampler = DistributedEvalSampler(dataset)
    loader = DataLoader(dataset, batch_size=2, sampler=sampler)
    predictions = torch.cat([10 * batch for (batch,) in loader])
    all_predictions = torch.cat(all_gather_uneven(predictions))

    meter = SmoothedValue()
    meter.update(float(rank + 1), n=rank + 1)
    meter.synchronize_between_processes()
    return {
        "rank": get_rank(),
        "world_size": get_world_size(),
        "main": is_main_process(),
        "backend": dist.get_backend(),
        "comm_device": str(comm_device()),
        "gathered": [part.tolist() for part in gathered],
        "mean": mean.tolist(),
        "sampler_indices": list(sampler),
        "all_predictions": all_predictions.tolist(),
        "meter": [meter.count, meter.total],
    }


def spawned(rank: int, out_dir: str, device: str) -> None:
    """`spawn` target: `init_distributed` must reuse the group spawn started; record the collectives."""
    info = init_distributed(device=device)
    result = {"info": [info.rank, info.world_size, info.local_rank, str(info.device), info.distributed]}
    result.update(collectives(rank))
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(result))


def torchrun_rank(rank: int, port: int, out_dir: str) -> None:
    """A forked rank that, like a torchrun child, finds its place only in the environment and joins via it."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    os.environ["LOCAL_RANK"] = str(rank)
    info = init_distributed(device="cpu")
    result = {"info": [info.rank, info.world_size, info.local_rank, str(info.device), info.distributed]}
    result.update(collectives(info.rank))
    cleanup()
    (Path(out_dir) / f"rank{info.rank}.json").write_text(json.dumps(result))
