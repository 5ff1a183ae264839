"""Deterministic weights for the parity tests: the same recipe the fixture recorders ran on the original code."""

from __future__ import annotations

import math
import zlib

import torch
from torch import nn


def fill_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Deterministic value of a state_dict entry from a generator seeded by crc32(key) (same as the recorder)."""
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    if key.endswith("running_var"):
        return torch.rand(shape, generator=g) + 0.5
    if key.endswith("parametrizations.weight.0.base"):
        return torch.linalg.qr(torch.randn(shape, generator=g, dtype=torch.float64))[0].float()
    if key.endswith("parametrizations.weight.original"):
        return torch.tril(torch.randn(shape, generator=g), diagonal=-1) * 0.1 - torch.eye(*shape)
    u = torch.rand(shape, generator=g) * 2 - 1
    if len(shape) >= 2:
        return u / math.sqrt(math.prod(shape[1:]))
    return 1 + 0.1 * u if key.endswith("weight") else 0.1 * u


def fill_deterministic(module: nn.Module) -> nn.Module:
    """Load `fill_value` into every state_dict entry (counters kept), so weights never depend on init order."""
    state = module.state_dict()
    module.load_state_dict(
        {k: v if k.endswith("num_batches_tracked") else fill_value(k, tuple(v.shape)) for k, v in state.items()}
    )
    return module
