"""Process-group set-up of the original (`distributed_utils.py`) on top of `kdrepro_shared.distributed`.

The original needed the launcher and NCCL even for one GPU. Here torchrun's or `torch.distributed.launch`'s
environment joins a group (NCCL on CUDA, gloo on CPU), and a plain `python main_distributed.py` joins a one-process
group, so DDP wrapping, `module.` checkpoint keys and the all-reduced validation behave exactly as under the launcher.
"""

from __future__ import annotations

import argparse
import builtins
from typing import Any

import torch
import torch.distributed as dist

from kdrepro_shared.distributed import (
    get_rank,
    get_world_size,
    init_distributed,
    is_dist_avail_and_initialized,
    is_main_process,
)

__all__ = [
    "get_device",
    "get_rank",
    "get_world_size",
    "init_distributed_mode",
    "is_dist_avail_and_initialized",
    "is_main_process",
    "setup_for_distributed",
]


def init_distributed_mode(args: argparse.Namespace) -> None:
    """Join the launcher's group, or a one-process group without one; set `args.rank/world_size/gpu/distributed`."""
    info = init_distributed()
    if not info.distributed and not is_dist_avail_and_initialized():
        if info.device.type == "cuda":
            torch.cuda.set_device(info.device)
        backend = "nccl" if info.device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, store=dist.HashStore(), rank=0, world_size=1)
    args.rank = get_rank()
    args.world_size = get_world_size()
    args.gpu = info.local_rank
    args.distributed = True
    args.dist_backend = dist.get_backend()
    print(f"| distributed init (rank {args.rank}): {args.dist_url}", flush=True)
    dist.barrier()
    if args.world_size > 1:
        setup_for_distributed(args.rank == 0)


def get_device(args: argparse.Namespace) -> torch.device:
    """`cuda:<local rank>` when CUDA is available, else CPU (`--device` is parsed but unused, as in the original)."""
    return torch.device(f"cuda:{args.gpu}") if torch.cuda.is_available() else torch.device("cpu")


def setup_for_distributed(is_master: bool) -> None:
    """Silence `print` on non-master ranks unless called with `force=True`."""
    builtin_print = builtins.print

    def print_(*args: Any, **kwargs: Any) -> None:
        force = kwargs.pop("force", False)
        if is_master or force:
            builtin_print(*args, **kwargs)

    builtins.print = print_
