"""How the entry scripts start their processes: torchrun, the original's spawn-per-GPU flags, or one CPU process.

The original always ran `mp.spawn(nprocs=torch.cuda.device_count())` with NCCL, so on a CPU-only machine it spawned
nothing and exited 0. Here, in every case each process ends up inside a process group, so DDP wrapping, the
`module.`-prefixed checkpoint keys and the collectives behave as in the original:

- under torchrun (RANK/WORLD_SIZE/... set): join `env://` (nccl on CUDA, gloo on CPU); `--world_size/--dist_url/--rank`
  are ignored;
- otherwise one process per visible GPU (one process on a CPU-only machine), global rank `--rank * nprocs + local`,
  `init_method=--dist_url`, `world_size=--world_size` (`env://` with `--rank -1` reads the node rank from $RANK),
  as in the original. When `--world_size` is not given on the command line, the world is this node's processes
  (the original default 8 equals that on the 8-GPU node it was written for, and hangs anywhere else).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from kdrepro_shared.distributed import TORCHRUN_ENV, cleanup, init_distributed, is_dist_avail_and_initialized
from kdrepro_shared.errors import KdReproError

Worker = Callable[[argparse.Namespace, torch.device], None]
DIST_FLAGS = ("world_size", "dist_url", "rank")
_log = logging.getLogger("whiten_mtd.distributed")


def add_distributed_args(parser: argparse.ArgumentParser, dist_url: str) -> None:
    """The original's `--world_size` (default 8), `--dist_url` (per-script default) and `--rank` (default 0) flags."""
    parser.add_argument(
        "--world_size", default=8, type=int, help="number of processes in all (default 8; omitted: this node's)"
    )
    parser.add_argument("--dist_url", default=dist_url, type=str, help="url used to set up distributed training")
    parser.add_argument("--rank", default=0, type=int, help="node rank for distributed training")


def given_on_command_line(argv: Sequence[str], flag: str) -> bool:
    """Whether long option `flag` (e.g. `--world_size`) appears in `argv`: `--flag V`, `--flag=V` or an abbreviation
    argparse accepts (`--world 2`)."""
    names = [arg.split("=", 1)[0] for arg in argv if arg.startswith("--") and len(arg) > 2]
    return any(flag.startswith(name) for name in names)


def under_torchrun() -> bool:
    """Whether torchrun's environment variables describe this process."""
    return all(name in os.environ for name in TORCHRUN_ENV)


def launch(worker: Worker, args: argparse.Namespace, *, world_size_given: bool = True) -> None:
    """Run `worker(args, device)` in every process of the job, inside a process group (see the module docstring).

    `args.rank`, `args.world_size` and `args.gpu` are set to this process's global rank, the world size and its local
    index before `worker` runs. `world_size_given=False` means `--world_size` was left at its default.
    """
    if under_torchrun():
        info = init_distributed()
        args.rank, args.world_size, args.gpu = info.rank, info.world_size, info.local_rank
        _run(worker, args, info.device)
        return
    nprocs = torch.cuda.device_count() if torch.cuda.is_available() else 1
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not world_size_given:
        args.world_size = nprocs
    if args.world_size == 1 and args.rank in (0, -1):
        args.rank, args.gpu = 0, 0
        device = _set_local_device(0, backend)
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
        _run(worker, args, device)
    elif nprocs == 1:
        _node_worker(0, worker, nprocs, args, backend)
    else:
        mp.spawn(_node_worker, args=(worker, nprocs, args, backend), nprocs=nprocs, join=True)


def _set_local_device(local: int, backend: str) -> torch.device:
    """The device of local process `local`: GPU `local` for nccl (made current), else the CPU."""
    if backend == "nccl":
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _node_worker(local: int, worker: Worker, nprocs: int, args: argparse.Namespace, backend: str) -> None:
    """One process of the original launch: global rank from the node rank, group from `--dist_url`."""
    node_rank = args.rank
    if args.dist_url == "env://" and node_rank == -1:
        node_rank = int(os.environ["RANK"])
    args.rank = node_rank * nprocs + local
    args.gpu = local
    if not 0 <= args.rank < args.world_size:
        raise KdReproError(
            f"global rank {args.rank} (--rank {node_rank} x {nprocs} processes + {local}) is outside --world_size "
            f"{args.world_size}; set --world_size to the total number of processes"
        )
    device = _set_local_device(local, backend)
    dist.init_process_group(backend, init_method=args.dist_url, world_size=args.world_size, rank=args.rank)
    _run(worker, args, device)


def _run(worker: Worker, args: argparse.Namespace, device: torch.device) -> None:
    """Run the worker and leave the process group afterwards, whatever happens."""
    _log.debug("rank %d/%d on %s (%s)", args.rank, args.world_size, device, dist.get_backend())
    try:
        worker(args, device)
    finally:
        cleanup()


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """Move `model` to `device`, convert BatchNorm to SyncBatchNorm on CUDA (as the original) and wrap it in DDP.

    On CPU SyncBatchNorm does not exist, so plain BatchNorm is kept (identical with one process).
    """
    if not is_dist_avail_and_initialized():
        raise KdReproError("wrap_ddp needs a process group; start the script through whiten_mtd.distributed.launch")
    model = model.to(device)
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device])
    return nn.parallel.DistributedDataParallel(model)
