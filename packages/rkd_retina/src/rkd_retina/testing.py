"""Deterministic weights and fixed affine warps, shared by the parity tests and the fixture recorders.

Weights are filled per state_dict key from a generator seeded by the key name, so values never depend on the
construction order; the fixed warps use the original θ formula without randomness or colour jitter.
"""

from __future__ import annotations

import math
import zlib

import torch
from torch import nn
from torch.nn import functional as F


def fill_deterministic(model: nn.Module) -> nn.Module:
    """Overwrite every float state_dict tensor from a generator seeded by crc32 of its key name."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            u = torch.rand(tensor.shape, generator=gen, dtype=torch.float64) * 2 - 1
            if tensor.dim() == 1:
                value = 1 + 0.1 * u if name.endswith("weight") else 0.1 * u
            elif "relative_position_bias_table" in name:
                value = 0.02 * u
            else:
                value = u * math.sqrt(6.0 / tensor[0].numel())
            tensor.copy_(value.to(tensor.dtype))
    return model


def fixed_affine(images: torch.Tensor, used_for: str = "detector") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`affine_images` with fixed per-image (angle, scale, tx, ty) and no colour jitter, same θ formula."""
    b, _, h, w = images.shape
    thetas = []
    for i in range(b):
        angle, scale, tx, ty = (7.0 + 3 * i, 1.1, 6.0, -4.0) if used_for == "detector" else (2.0 - i, 0.95, 2.0, 3.0)
        a = -angle * math.pi / 180
        rows = [[math.cos(a) / scale, math.sin(-a), -tx / h], [math.sin(a), math.cos(a) / scale, -ty / w], [0, 0, 1]]
        thetas.append(torch.tensor(rows, dtype=torch.float32))
    theta = torch.stack(thetas)
    inverse = torch.inverse(theta)
    grid = F.affine_grid(theta[:, :2], images.size(), align_corners=True)
    grid_inverse = F.affine_grid(inverse[:, :2], images.size(), align_corners=True)
    out = F.grid_sample(images, grid, align_corners=True)
    return out.detach().clone(), grid, grid_inverse
