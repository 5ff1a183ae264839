"""torch.distributed set-up for both launch styles the originals use (torchrun's `env://` and `mp.spawn`), and helpers.

Every helper works unchanged in a single process with no process group, so training code needs no `if distributed`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import Sampler

from kdrepro_shared.device import resolve_device
from kdrepro_shared.errors import KdReproError

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: its ranks, the world size, its device, and whether a group is running."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    distributed: bool


def init_distributed(backend: str | None = None, *, device: str = "auto") -> DistInfo:
    """Join the process group described by torchrun's environment (`env://`), or return a single-process DistInfo.

    Without RANK/WORLD_SIZE/... nothing is initialised. With them, `device` (see `resolve_device`) picks CUDA, where
    this process uses GPU `local_rank` and nccl, or CPU with gloo; `backend` overrides that choice. A group that is
    already running (as inside `spawn`) is reused, so the originals' `main_worker` may call this again.
    """
    present = [name for name in TORCHRUN_ENV if name in os.environ]
    if not present:
        return DistInfo(rank=0, world_size=1, local_rank=0, device=resolve_device(device), distributed=False)
    missing = [name for name in TORCHRUN_ENV if name not in os.environ]
    if missing:
        raise KdReproError(f"incomplete torchrun environment: {', '.join(missing)} unset (launch with torchrun)")
    rank, world_size, local_rank = (int(os.environ[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    target = resolve_device(device)
    if target.type == "cuda":
        target = resolve_device(f"cuda:{local_rank}")
        torch.cuda.set_device(target)
    if not is_dist_avail_and_initialized():
        backend = backend or ("nccl" if target.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=target, distributed=True)


def is_dist_avail_and_initialized() -> bool:
    """Whether torch.distributed is built in and a process group is running."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_dist_avail_and_initialized() else 0


def get_world_size() -> int:
    """The number of processes in the group (1 without a process group)."""
    return dist.get_world_size() if is_dist_avail_and_initialized() else 1


def is_main_process() -> bool:
    """Whether this is rank 0, the process that logs, prints and saves."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank (a no-op without a process group)."""
    if is_dist_avail_and_initialized():
        dist.barrier()


def comm_device() -> torch.device:
    """The device collectives of the running backend take tensors on: the current GPU for nccl, else CPU."""
    if is_dist_avail_and_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over all ranks, as a new tensor (`tensor` itself on a single process)."""
    world_size = get_world_size()
    if world_size == 1:
        return tensor
    reduced = tensor.detach().clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced / world_size


def all_gather_uneven(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Gather every rank's `tensor`, whose first dimension may differ between ranks, as a list indexed by rank.

    Collectives need equal shapes, so the lengths are gathered first and each tensor is padded to the longest.
    """
    world_size = get_world_size()
    if world_size == 1:
        return [tensor]
    length = torch.tensor([tensor.shape[0]], dtype=torch.long, device=tensor.device)
    lengths = [torch.zeros_like(length) for _ in range(world_size)]
    dist.all_gather(lengths, length)
    sizes = [int(size.item()) for size in lengths]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(gathered, padded)
    return [part[:size] for part, size in zip(gathered, sizes, strict=True)]


class DistributedEvalSampler(Sampler[int]):
    """Gives each rank one contiguous, disjoint block of the dataset; together they cover every index exactly once.

    Unlike `DistributedSampler` nothing is padded or repeated, so metrics are exact; block sizes differ by at most
    one, and `torch.cat(all_gather_uneven(per_rank_outputs))` restores the dataset order.
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None) -> None:
        self.num_replicas = get_world_size() if num_replicas is None else num_replicas
        self.rank = get_rank() if rank is None else rank
        if not 0 <= self.rank < self.num_replicas:
            raise KdReproError(f"rank {self.rank} is outside [0, {self.num_replicas}) replicas")
        total = len(dataset)
        per_rank, extra = divmod(total, self.num_replicas)
        start = self.rank * per_rank + min(self.rank, extra)
        self.indices = range(start, start + per_rank + (self.rank < extra))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def cleanup() -> None:
    """Destroy the process group if one is running."""
    if is_dist_avail_and_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for MASTER_PORT."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawned_worker(  # noqa: PLR0917 -- mp.spawn passes its args positionally
    rank: int, fn: Callable[..., object], world_size: int, port: int, backend: str | None, device: str, args: tuple
) -> None:
    """Child of `spawn`: export torchrun's variables for `rank`, join the group, run `fn(rank, *args)`, leave."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank)
    )
    init_distributed(backend, device=device)
    try:
        fn(rank, *args)
    finally:
        cleanup()


def spawn(
    fn: Callable[..., object],
    nprocs: int,
    args: tuple = (),
    backend: str | None = None,
    port: int | None = None,
    *,
    device: str = "auto",
) -> None:
    """Run `fn(rank, *args)` in `nprocs` fresh processes on one machine, each inside a process group (`mp.spawn` style).

    `fn` must be picklable (defined at module level); `port` defaults to a free one; `backend` and `device` are passed
    to `init_distributed` (rank r uses GPU r on CUDA). A child's exception is re-raised here.
    """
    port = free_port() if port is None else port
    mp.spawn(_spawned_worker, args=(fn, nprocs, port, backend, device, args), nprocs=nprocs, join=True)
