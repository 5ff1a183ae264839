"""DETR's `util/misc.py` for ViDT: padded image batches (NestedTensor), process-group helpers, small tensor utilities.

Metric logging comes from `kdrepro_shared.logging` (the same SmoothedValue/MetricLogger, behind a tqdm bar), and the
process group from `kdrepro_shared.distributed` (torchrun / `torch.distributed.launch --use_env`; gloo on CPU).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torchvision

from kdrepro_shared.checkpoints import io as ckpt_io
from kdrepro_shared.distributed import (
    get_rank,
    get_world_size,
    init_distributed,
    is_dist_avail_and_initialized,
    is_main_process,
)
from kdrepro_shared.logging import MetricLogger, SmoothedValue
from vkd.distributed_utils import setup_for_distributed

__all__ = [
    "MetricLogger",
    "NestedTensor",
    "SmoothedValue",
    "accuracy",
    "all_gather",
    "collate_fn",
    "get_rank",
    "get_world_size",
    "init_distributed_mode",
    "interpolate",
    "inverse_sigmoid",
    "is_dist_avail_and_initialized",
    "is_main_process",
    "nested_tensor_from_tensor_list",
    "reduce_dict",
    "save_on_master",
]


class NestedTensor:
    """A zero-padded image batch (B, C, H, W) with its padding mask (B, H, W), True where a pixel is padding."""

    def __init__(self, tensors: torch.Tensor, mask: torch.Tensor | None) -> None:
        self.tensors = tensors
        self.mask = mask

    def to(self, device: torch.device | str) -> NestedTensor:
        """Both tensors moved to `device`."""
        mask = None if self.mask is None else self.mask.to(device)
        return NestedTensor(self.tensors.to(device), mask)

    def decompose(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images, mask)."""
        return self.tensors, self.mask

    def __repr__(self) -> str:
        return repr(self.tensors)


def nested_tensor_from_tensor_list(tensor_list: list[torch.Tensor]) -> NestedTensor:
    """Pad (C, H, W) images at the bottom/right to the largest H and W of the list; the mask marks the padding."""
    if tensor_list[0].ndim != 3:
        raise ValueError(f"nested_tensor_from_tensor_list expects (C, H, W) images, got {tensor_list[0].ndim}-d")
    channels, height, width = (max(sizes) for sizes in zip(*(img.shape for img in tensor_list), strict=True))
    first = tensor_list[0]
    batch = torch.zeros((len(tensor_list), channels, height, width), dtype=first.dtype, device=first.device)
    mask = torch.ones((len(tensor_list), height, width), dtype=torch.bool, device=first.device)
    for img, padded, pad_mask in zip(tensor_list, batch, mask, strict=True):
        padded[: img.shape[0], : img.shape[1], : img.shape[2]].copy_(img)
        pad_mask[: img.shape[1], : img.shape[2]] = False
    return NestedTensor(batch, mask)


def collate_fn(batch: list[tuple[torch.Tensor, dict]]) -> tuple[NestedTensor, tuple[dict, ...]]:
    """DataLoader collate: the images as one NestedTensor, the targets as a tuple of dicts."""
    images, targets = zip(*batch, strict=True)
    return nested_tensor_from_tensor_list(list(images)), targets


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """log(x / (1 - x)) with x clamped to [0, 1] and both terms floored at `eps`."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def interpolate(
    input: torch.Tensor,
    size: Any = None,
    scale_factor: float | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> torch.Tensor:
    """`torchvision.ops.misc.interpolate` (F.interpolate that also accepts empty batches), as the original calls it."""
    return torchvision.ops.misc.interpolate(input, size, scale_factor, mode, align_corners)


@torch.no_grad()
def accuracy(output: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1,)) -> list[torch.Tensor]:
    """Top-k accuracies in percent of logits `output` (N, C) against labels `target` (N,); 0 when N is 0."""
    if target.numel() == 0:
        return [torch.zeros([], device=output.device)]
    _, pred = output.topk(max(topk), 1, True, True)
    correct = pred.t().eq(target.view(1, -1).expand(max(topk), -1))
    return [correct[:k].reshape(-1).float().sum(0).mul_(100.0 / target.size(0)) for k in topk]


def all_gather(data: Any) -> list[Any]:
    """Every rank's picklable `data`, as a list indexed by rank (`[data]` without a process group)."""
    world_size = get_world_size()
    if world_size == 1:
        return [data]
    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, data)
    return gathered


def reduce_dict(input_dict: dict[str, torch.Tensor], average: bool = True) -> dict[str, torch.Tensor]:
    """The dict's 0-d tensors summed (or averaged) over all ranks, in sorted key order so every rank agrees."""
    world_size = get_world_size()
    if world_size < 2:
        return input_dict
    with torch.no_grad():
        names = sorted(input_dict)
        values = torch.stack([input_dict[name] for name in names])
        dist.all_reduce(values)
        if average:
            values /= world_size
        return dict(zip(names, values, strict=True))


def save_on_master(obj: Any, path: str | os.PathLike[str]) -> None:
    """Atomically `torch.save` `obj` to `path` on rank 0 only, in the original's exact layout (no meta block)."""
    if is_main_process():
        ckpt_io.save(Path(path), obj, meta=False)


def init_distributed_mode(args: argparse.Namespace) -> None:
    """Join the launcher's process group (torchrun or `launch --use_env`) or stay a single process, as the original.

    Sets `args.rank`, `args.world_size`, `args.gpu`, `args.distributed`, `args.dist_url`, `args.dist_backend`; CUDA
    uses nccl and GPU `LOCAL_RANK`, the CPU gloo. Non-master ranks stop printing.
    """
    info = init_distributed(device="cuda" if args.device.startswith("cuda") else "cpu")
    args.distributed = info.distributed
    args.gpu = info.local_rank
    if not info.distributed:
        print("Not using distributed mode")
        return
    args.rank = info.rank
    args.world_size = info.world_size
    args.dist_url = "env://"
    args.dist_backend = dist.get_backend()
    print(f"| distributed init (rank {args.rank} / world {args.world_size}): {args.dist_url}", flush=True)
    dist.barrier()
    setup_for_distributed(args.rank == 0)
