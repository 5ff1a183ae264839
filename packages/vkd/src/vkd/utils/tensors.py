"""Tensor helpers of the original (`utils/tensors.py`, from I-JEPA); only `reduce_tensor` is used by training."""

from __future__ import annotations

import torch

from kdrepro_shared.distributed import all_reduce_mean


def reduce_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over all ranks, as a new tensor (all-reduce sum divided by the world size)."""
    return all_reduce_mean(tensor).clone()
