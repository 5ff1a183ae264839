"""Opt-in speed and scale switches of the train scripts, all off by default (the default run is the seed's).

`--device`, `--gpu_loader`, `--channels_last`, `--precision`, `--compile` and torchrun DDP (`--distributed`). Under DDP
`--batch_size` stays the global batch (each of W ranks takes batch_size/W), gradients are averaged by DDP, every rank
starts from rank 0's state, BatchNorm buffers are averaged over ranks after each epoch, the test set is split without
duplicates, and only rank 0 prints, logs and saves. BatchNorm statistics and the batch-relational losses (SP, RKD, PKT,
CC) see each rank's shard; CRD's memory, RRD's queue and ICD's B×B logits are gathered (see `distillers._dist`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from distillers_icd_rrd.datasets.gpu_loader import GpuCifarLoader
from kdrepro_shared.device import PRECISIONS, autocast, resolve_device
from kdrepro_shared.distributed import (
    TORCHRUN_ENV,
    DistributedEvalSampler,
    all_reduce_mean,
    comm_device,
    get_world_size,
    init_distributed,
    is_dist_avail_and_initialized,
    is_main_process,
)
from kdrepro_shared.errors import KdReproError


def add_fast_path_options(parser: argparse.ArgumentParser) -> None:
    """Add the opt-in device, loader, precision, compile and DDP flags (their defaults reproduce the seed's run)."""
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available, the seed's choice), cpu, cuda or cuda:N"
    )
    parser.add_argument(
        "--gpu_loader",
        action="store_true",
        help="keep the uint8 train set on the device and crop/flip/normalise there (same pipeline, no PIL workers)",
    )
    parser.add_argument(
        "--channels_last", action="store_true", help="channels_last memory format for the nets and their inputs"
    )
    parser.add_argument(
        "--precision",
        default="off",
        choices=list(PRECISIONS),
        help="autocast: off (fp32, the seed), bf16, or fp16 (CUDA, with a GradScaler); the KD/contrastive softmaxes "
        "and Gram/SVD losses stay float32",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the student's forward")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="DDP under torchrun (gloo on CPU, nccl on CUDA); --batch_size stays the global batch",
    )


@dataclass(frozen=True)
class Runtime:
    """Where and how the loops run a batch: the device, the autocast precision and the inputs' memory format."""

    device: torch.device
    precision: str = "off"
    channels_last: bool = False

    @classmethod
    def of(cls, opt: argparse.Namespace) -> Runtime:
        """The settings in `opt`; options a script lacks (transfer, plots) take the seed's behaviour."""
        return cls(
            resolve_device(getattr(opt, "device", "auto")),
            getattr(opt, "precision", "off"),
            getattr(opt, "channels_last", False),
        )

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """The mixed-precision context of `--precision` (a no-op for `off`)."""
        return autocast(self.device, self.precision)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of images as float32 on the device, channels_last when asked for."""
        memory_format = torch.channels_last if self.channels_last else torch.preserve_format
        return images.float().to(self.device, memory_format=memory_format)


def setup_runtime(opt: argparse.Namespace) -> None:
    """Resolve `--device` into `opt.device` and, with `--distributed`, join torchrun's process group."""
    if not opt.distributed:
        opt.device = str(resolve_device(opt.device))
        return
    if not all(name in os.environ for name in TORCHRUN_ENV):
        raise KdReproError("--distributed needs torchrun's environment: launch with `torchrun --nproc_per_node=N ...`")
    info = init_distributed(device=opt.device)
    if opt.batch_size % info.world_size:
        raise KdReproError(f"--batch_size {opt.batch_size} is the global batch: it must divide by {info.world_size}")
    opt.device = str(info.device)


@contextlib.contextmanager
def quiet_unless_main() -> Iterator[None]:
    """Silence stdout on every rank but 0 (rank 0 prints the seed's lines)."""
    if is_main_process():
        yield
        return
    with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
        yield


def runtime_loaders(opt: argparse.Namespace, train_loader: DataLoader, val_loader: DataLoader) -> tuple[Any, Any]:
    """The seed's loaders, re-made per rank under `--distributed` and with the train set on the device for
    `--gpu_loader`; batch size, shuffle and drop_last stay the seed's."""
    dataset, batch_size, drop_last = train_loader.dataset, train_loader.batch_size, train_loader.drop_last
    sampler = None
    if opt.distributed:
        sampler = DistributedSampler(dataset, shuffle=True, seed=shared_seed(), drop_last=drop_last)
        batch_size //= get_world_size()
        val_loader = DataLoader(
            val_loader.dataset,
            batch_size=val_loader.batch_size,
            sampler=DistributedEvalSampler(val_loader.dataset),
            num_workers=val_loader.num_workers,
        )
    workers = train_loader.num_workers
    if opt.gpu_loader:
        device = torch.device(opt.device)
        kwargs = {"sampler": sampler, "num_workers": workers, "channels_last": opt.channels_last}
        return GpuCifarLoader(dataset, batch_size, device=device, drop_last=drop_last, **kwargs), val_loader
    if opt.distributed:
        train_loader = DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last
        )
    return train_loader, val_loader


def shared_seed() -> int:
    """A seed drawn from rank 0's torch RNG and broadcast, so every rank's DistributedSampler shuffles alike."""
    seed = torch.randint(2**31 - 1, (1,), dtype=torch.long).to(comm_device())
    if is_dist_avail_and_initialized():
        dist.broadcast(seed, src=0)
    return int(seed.item())


def set_loader_epoch(loader: Any, epoch: int) -> None:
    """Tell a DistributedSampler (directly or inside the GPU loader) which epoch it shuffles for."""
    target = loader if isinstance(loader, GpuCifarLoader) else getattr(loader, "sampler", None)
    if hasattr(target, "set_epoch"):
        target.set_epoch(epoch)


def ddp(module: nn.Module, opt: argparse.Namespace, find_unused: bool = False) -> nn.Module:
    """`module` in DistributedDataParallel on `opt.device`; buffers are never broadcast per forward (see
    `sync_buffers` and `broadcast_state`)."""
    device = torch.device(opt.device)
    with warnings.catch_warnings():  # torch ≥ 2.15 renames broadcast_buffers; the old name works on every torch ≥ 2.4
        warnings.simplefilter("ignore", FutureWarning)
        return DistributedDataParallel(
            module,
            device_ids=[device] if device.type == "cuda" else None,
            broadcast_buffers=False,
            find_unused_parameters=find_unused,
        )


def broadcast_state(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every rank's `module` (a no-op on one process)."""
    if not is_dist_avail_and_initialized():
        return
    for tensor in module.state_dict().values():
        moved = tensor.to(comm_device())
        dist.broadcast(moved, src=0)
        tensor.copy_(moved)


def sync_buffers(module: nn.Module) -> None:
    """Average the floating buffers (BatchNorm running statistics) of `module` over the ranks, in place."""
    if get_world_size() == 1:
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            buffer.copy_(all_reduce_mean(buffer.to(comm_device())))


def make_scaler(opt: argparse.Namespace) -> torch.amp.GradScaler | None:
    """A GradScaler for `--precision fp16`, else None (fp32 and bf16 need no loss scaling)."""
    return torch.amp.GradScaler(torch.device(opt.device).type) if opt.precision == "fp16" else None
