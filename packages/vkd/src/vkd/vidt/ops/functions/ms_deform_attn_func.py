"""Multi-scale deformable attention sampling (Deformable-DETR's op): compiled CUDA kernel or pure-PyTorch path.

`ms_deform_attn` picks the path: the compiled op (`MultiScaleDeformableAttention`, built on first CUDA use from
`vkd/vidt/ops/src` through `kdrepro_shared.extensions.load_extension`) for CUDA tensors when it is available, the
pure-PyTorch `ms_deform_attn_core_pytorch` otherwise (always on the CPU). Both compute the same bilinear sampling.
"""

from __future__ import annotations

import functools
import os
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from kdrepro_shared.errors import KdReproError
from kdrepro_shared.extensions import load_extension

__all__ = [
    "BACKENDS",
    "EXTENSION_NAME",
    "MSDeformAttnFunction",
    "compiled_op",
    "ms_deform_attn",
    "ms_deform_attn_core_pytorch",
]

EXTENSION_NAME = "MultiScaleDeformableAttention"
BACKENDS = ("auto", "pytorch", "cuda")
# `auto` (default) uses the compiled op on CUDA when it loads; `pytorch` always runs the fallback.
BACKEND_ENV = "VKD_MSDA_BACKEND"
_SOURCES = ("ms_deform_attn.cpp", "ms_deform_attn_cuda.cu")


def ms_deform_attn_core_pytorch(
    value: torch.Tensor,
    value_spatial_shapes: torch.Tensor | list[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Sample `value` bilinearly at `sampling_locations` per level and sum with `attention_weights`.

    Shapes: value (N, S, M, D), locations (N, Lq, M, L, P, 2) in [0, 1] as (x, y), weights (N, Lq, M, L, P);
    returns (N, Lq, M·D). Out-of-map samples read zeros (grid_sample, align_corners=False).
    """
    n, _, heads, depth = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    shapes = [(int(h), int(w)) for h, w in value_spatial_shapes]
    per_level = value.split([h * w for h, w in shapes], dim=1)
    grids = sampling_locations * 2 - 1
    sampled = []
    for level, (h, w) in enumerate(shapes):
        # (N, H·W, M, D) -> (N·M, D, H, W)
        level_value = per_level[level].flatten(2).transpose(1, 2).reshape(n * heads, depth, h, w)
        # (N, Lq, M, P, 2) -> (N·M, Lq, P, 2)
        level_grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(level_value, level_grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        )
    # (N, Lq, M, L, P) -> (N·M, 1, Lq, L·P)
    weights = attention_weights.transpose(1, 2).reshape(n * heads, 1, queries, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1).view(n, heads * depth, queries)
    return out.transpose(1, 2).contiguous()


@functools.cache
def compiled_op() -> types.ModuleType | None:
    """The compiled op: a prebuilt `MultiScaleDeformableAttention`, else an on-demand CUDA build, else None."""
    src = Path(__file__).resolve().parent.parent / "src"
    return load_extension(EXTENSION_NAME, sources=[src / name for name in _SOURCES])


class MSDeformAttnFunction(Function):
    """Autograd wrapper of the compiled op (forward and backward kernels on CUDA)."""

    @staticmethod
    def forward(  # noqa: PLR0917 -- the original's positional signature
        ctx,
        value: torch.Tensor,
        value_spatial_shapes: torch.Tensor,
        value_level_start_index: torch.Tensor,
        sampling_locations: torch.Tensor,
        attention_weights: torch.Tensor,
        im2col_step: int,
    ) -> torch.Tensor:
        op = compiled_op()
        ctx.im2col_step = im2col_step
        ctx.save_for_backward(
            value, value_spatial_shapes, value_level_start_index, sampling_locations, attention_weights
        )
        return op.ms_deform_attn_forward(
            value, value_spatial_shapes, value_level_start_index, sampling_locations, attention_weights, im2col_step
        )

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        value, shapes, starts, locations, weights = ctx.saved_tensors
        grad_value, grad_locations, grad_weights = compiled_op().ms_deform_attn_backward(
            value, shapes, starts, locations, weights, grad_output.contiguous(), ctx.im2col_step
        )
        return grad_value, None, None, grad_locations, grad_weights, None


def _backend(backend: str | None) -> str:
    """The requested backend: the argument, else `$VKD_MSDA_BACKEND`, else `auto`; one line if invalid."""
    choice = backend or os.environ.get(BACKEND_ENV, "auto")
    if choice not in BACKENDS:
        raise KdReproError(f"deformable-attention backend {choice!r} is not one of {', '.join(BACKENDS)}")
    return choice


def ms_deform_attn(  # noqa: PLR0917 -- the original's positional signature
    value: torch.Tensor,
    value_spatial_shapes: torch.Tensor,
    value_level_start_index: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
    im2col_step: int = 64,
    backend: str | None = None,
) -> torch.Tensor:
    """Deformable-attention sampling through the compiled op when usable, else the pure-PyTorch path.

    `backend="cuda"` insists on the compiled op (error if it cannot be loaded); `"pytorch"` forces the fallback.
    """
    choice = _backend(backend)
    if choice != "pytorch" and value.is_cuda and compiled_op() is not None:
        return MSDeformAttnFunction.apply(
            value.contiguous(),
            value_spatial_shapes.contiguous(),
            value_level_start_index.contiguous(),
            sampling_locations.contiguous(),
            attention_weights.contiguous(),
            im2col_step,
        )
    if choice == "cuda":
        raise KdReproError("the compiled deformable-attention op needs CUDA tensors and a CUDA build (nvcc)")
    return ms_deform_attn_core_pytorch(value, value_spatial_shapes, sampling_locations, attention_weights)
