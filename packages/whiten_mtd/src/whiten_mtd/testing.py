"""Deterministic weights for parity tests: the rule the golden-fixture recorders applied to the original's models."""

from __future__ import annotations

import zlib

import torch


@torch.no_grad()
def fill_deterministic(model: torch.nn.Module) -> torch.nn.Module:
    """Fill every float state_dict tensor from a generator seeded with crc32 of its key, so values never depend on
    construction order: BN running variances in [0.5, 1.5), matrices He-scaled normal, vectors near 1 (weights) or 0.
    """
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point():
            continue
        gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        if name.endswith("running_var"):
            value = 0.5 + torch.rand(tensor.shape, generator=gen)
        elif tensor.ndim >= 2:
            value = torch.randn(tensor.shape, generator=gen) * (2.0 / tensor[0].numel()) ** 0.5
        else:
            value = 0.1 * torch.randn(tensor.shape, generator=gen) + (1.0 if name.endswith("weight") else 0.0)
        tensor.copy_(value)
    return model
