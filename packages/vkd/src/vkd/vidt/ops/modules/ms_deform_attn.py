"""`MSDeformAttn`: Deformable-DETR's multi-scale deformable attention layer as ViDT's decoder uses it."""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..functions import ms_deform_attn

__all__ = ["MSDeformAttn"]


class MSDeformAttn(nn.Module):
    """Each query attends to `n_points` learnt offsets around its reference point on each of `n_levels` maps.

    Parameter names and initialisation follow Deformable-DETR (`sampling_offsets`, `attention_weights`,
    `value_proj`, `output_proj`); the sampling runs through `ms_deform_attn` (compiled op or PyTorch path).
    """

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model must be divisible by n_heads, but got {d_model} and {n_heads}")
        head_dim = d_model // n_heads
        if head_dim & (head_dim - 1):
            warnings.warn(
                "MSDeformAttn runs fastest in CUDA when d_model / n_heads is a power of 2", UserWarning, stacklevel=2
            )
        self.im2col_step = 64
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Zero offsets/weights, offset biases on a ring of head directions scaled by point index, xavier values."""
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        angles = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        ring = torch.stack([angles.cos(), angles.sin()], -1)
        ring = ring / ring.abs().max(-1, keepdim=True)[0]
        grid = ring.view(self.n_heads, 1, 1, 2).repeat(1, self.n_levels, self.n_points, 1)
        grid = grid * torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias = nn.Parameter(grid.view(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def forward(  # noqa: PLR0917 -- the original's positional signature
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        input_flatten: torch.Tensor,
        input_spatial_shapes: torch.Tensor,
        input_level_start_index: torch.Tensor,
        input_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend from `query` (N, Lq, C) into the flattened maps `input_flatten` (N, ΣH·W, C); returns (N, Lq, C).

        `reference_points` is (N, Lq, L, 2) points or (N, Lq, L, 4) boxes, normalised to [0, 1];
        `input_padding_mask` is True on padded positions, whose values are zeroed.
        """
        n, queries, _ = query.shape
        _, length, _ = input_flatten.shape
        if int((input_spatial_shapes[:, 0] * input_spatial_shapes[:, 1]).sum()) != length:
            raise ValueError("input_spatial_shapes do not add up to the length of input_flatten")
        value = self.value_proj(input_flatten)
        if input_padding_mask is not None:
            value = value.masked_fill(input_padding_mask[..., None], 0.0)
        value = value.view(n, length, self.n_heads, self.d_model // self.n_heads)
        offsets = self.sampling_offsets(query).view(n, queries, self.n_heads, self.n_levels, self.n_points, 2)
        weights = self.attention_weights(query).view(n, queries, self.n_heads, self.n_levels * self.n_points)
        weights = F.softmax(weights, -1).view(n, queries, self.n_heads, self.n_levels, self.n_points)
        if reference_points.shape[-1] == 2:
            # offsets are in pixels of each level: normalise by (W_l, H_l)
            normalizer = torch.stack([input_spatial_shapes[..., 1], input_spatial_shapes[..., 0]], -1)
            locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            # offsets are relative to the reference box: half its size per point
            locations = (
                reference_points[:, :, None, :, None, :2]
                + offsets / self.n_points * reference_points[:, :, None, :, None, 2:] * 0.5
            )
        else:
            raise ValueError(f"last dim of reference_points must be 2 or 4, got {reference_points.shape[-1]}")
        out = ms_deform_attn(value, input_spatial_shapes, input_level_start_index, locations, weights, self.im2col_step)
        return self.output_proj(out)
