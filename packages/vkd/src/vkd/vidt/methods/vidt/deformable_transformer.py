"""ViDT's neck: Deformable-DETR's transformer with the encoder removed (`methods/vidt/deformable_transformer.py`).

The [DET] tokens from the backbone are the decoder's queries; each layer runs [DET] self-attention, multi-scale
deformable cross-attention into the [PATCH] maps and an FFN. With iterative box refinement the detector hands its
box heads to `decoder.bbox_embed`: head 0 turns the 2-d reference points into boxes before the first layer and
head l+1 refines them after layer l (each new reference is detached).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from kdrepro_shared.errors import KdReproError
from vkd.vidt.ops import MSDeformAttn
from vkd.vidt.util.misc import inverse_sigmoid

__all__ = [
    "DeformableTransformer",
    "DeformableTransformerDecoder",
    "DeformableTransformerDecoderLayer",
    "build_deformable_transformer",
]

# number of COCO category ids the optional token-label head predicts (the original hard-codes it)
_TOKEN_LABEL_CLASSES = 91


def _clones(module: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList(copy.deepcopy(module) for _ in range(n))


def _activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The FFN activation by name (relu, gelu or glu)."""
    functions = {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}
    if name not in functions:
        raise KdReproError(f"activation should be one of {', '.join(functions)}, not {name!r}")
    return functions[name]


def _refine(delta: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """New detached reference = sigmoid(delta + inverse_sigmoid(reference)); a 2-d reference only moves the centre."""
    if reference.shape[-1] == 4:
        new = delta + inverse_sigmoid(reference)
    else:
        new = torch.cat([delta[..., :2] + inverse_sigmoid(reference), delta[..., 2:]], dim=-1)
    return new.sigmoid().detach()


class DeformableTransformerDecoderLayer(nn.Module):
    """[DET] self-attention → deformable cross-attention into the [PATCH] maps → FFN, each with add & norm."""

    def __init__(  # noqa: PLR0917 -- the original's positional signature
        self,
        d_model: int = 256,
        d_ffn: int = 1024,
        dropout: float = 0.1,
        activation: str = "relu",
        n_levels: int = 4,
        n_heads: int = 8,
        n_points: int = 4,
    ) -> None:
        super().__init__()
        self.cross_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.activation = _activation(activation)
        self.dropout3 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.dropout4 = nn.Dropout(dropout)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(  # noqa: PLR0917 -- the original's positional signature
        self,
        tgt: torch.Tensor,
        query_pos: torch.Tensor,
        reference_points: torch.Tensor,
        src: torch.Tensor,
        src_spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        src_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """tgt, query_pos: (B, D, C); src: (B, ΣH·W, C) flattened [PATCH] maps; returns updated tgt."""
        q = k = tgt + query_pos
        attended = self.self_attn(q.transpose(0, 1), k.transpose(0, 1), tgt.transpose(0, 1))[0].transpose(0, 1)
        tgt = self.norm2(tgt + self.dropout2(attended))
        attended = self.cross_attn(
            tgt + query_pos, reference_points, src, src_spatial_shapes, level_start_index, src_padding_mask
        )
        tgt = self.norm1(tgt + self.dropout1(attended))
        ffn = self.linear2(self.dropout3(self.activation(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout4(ffn))


class DeformableTransformerDecoder(nn.Module):
    """A stack of decoder layers; `bbox_embed` (set by the detector) turns on iterative box refinement."""

    def __init__(self, decoder_layer: nn.Module, num_layers: int, return_intermediate: bool = False) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.return_intermediate = return_intermediate
        self.bbox_embed: nn.ModuleList | None = None

    def forward(  # noqa: PLR0917 -- the original's positional signature
        self,
        tgt: torch.Tensor,
        reference_points: torch.Tensor,
        src: torch.Tensor,
        src_spatial_shapes: torch.Tensor,
        src_level_start_index: torch.Tensor,
        src_valid_ratios: torch.Tensor,
        query_pos: torch.Tensor | None = None,
        src_padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode; with `return_intermediate` return the stacked input + per-layer outputs and their references."""
        output = tgt
        states, references = [], []
        if self.bbox_embed is not None:
            reference_points = _refine(self.bbox_embed[0](output), reference_points)
        if self.return_intermediate:
            states.append(output)
            references.append(reference_points)
        for lid, layer in enumerate(self.layers):
            if reference_points.shape[-1] == 4:
                ratios = torch.cat([src_valid_ratios, src_valid_ratios], -1)[:, None]
            else:
                ratios = src_valid_ratios[:, None]
            reference_input = reference_points[:, :, None] * ratios
            output = layer(
                output, query_pos, reference_input, src, src_spatial_shapes, src_level_start_index, src_padding_mask
            )
            if self.bbox_embed is not None:
                reference_points = _refine(self.bbox_embed[lid + 1](output), reference_points)
            if self.return_intermediate:
                states.append(output)
                references.append(reference_points)
        if self.return_intermediate:
            return torch.stack(states), torch.stack(references)
        return output, reference_points


class DeformableTransformer(nn.Module):
    """Encoder-free deformable transformer: reference points from the [DET] positions, then the decoder.

    `level_embed` is created (and saved in checkpoints) but never used, as in the original. With `token_label`
    an extra head predicts a class per [PATCH] token (an optional trick of ViDT, off by default).
    """

    def __init__(  # noqa: PLR0917 -- the original's positional signature
        self,
        d_model: int = 256,
        nhead: int = 8,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        activation: str = "relu",
        return_intermediate_dec: bool = True,
        num_feature_levels: int = 4,
        dec_n_points: int = 4,
        token_label: bool = False,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.nhead = nhead
        layer = DeformableTransformerDecoderLayer(
            d_model, dim_feedforward, dropout, activation, num_feature_levels, nhead, dec_n_points
        )
        self.decoder = DeformableTransformerDecoder(layer, num_decoder_layers, return_intermediate_dec)
        self.level_embed = nn.Parameter(torch.empty(num_feature_levels, d_model))
        self.token_label = token_label
        self.reference_points = nn.Linear(d_model, 2)
        if token_label:
            self.enc_output = nn.Linear(d_model, d_model)
            self.enc_output_norm = nn.LayerNorm(d_model)
            self.token_embed = nn.Linear(d_model, _TOKEN_LABEL_CLASSES)
            prior_prob = 0.01
            self.token_embed.bias.data = torch.ones(_TOKEN_LABEL_CLASSES) * -math.log((1 - prior_prob) / prior_prob)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Xavier for every matrix, Deformable-DETR's init for the attention layers, normal level embeddings."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MSDeformAttn):
                m._reset_parameters()
        nn.init.normal_(self.level_embed)

    @staticmethod
    def get_valid_ratio(mask: torch.Tensor) -> torch.Tensor:
        """Unpadded fraction of a (B, H, W) padding mask along (x, y): (B, 2)."""
        _, h, w = mask.shape
        valid_h = torch.sum(~mask[:, :, 0], 1)
        valid_w = torch.sum(~mask[:, 0, :], 1)
        return torch.stack([valid_w.float() / w, valid_h.float() / h], -1)

    def gen_encoder_output_proposals(
        self, memory: torch.Tensor, memory_padding_mask: torch.Tensor, spatial_shapes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two-stage Deformable-DETR's per-token proposals; only the token features feed the token-label head."""
        n, _, _ = memory.shape
        proposals = []
        start = 0
        for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
            level_mask = memory_padding_mask[:, start : start + h * w].view(n, h, w, 1)
            valid_h = torch.sum(~level_mask[:, :, 0, 0], 1)
            valid_w = torch.sum(~level_mask[:, 0, :, 0], 1)
            grid_y, grid_x = torch.meshgrid(
                torch.linspace(0, h - 1, h, dtype=torch.float32, device=memory.device),
                torch.linspace(0, w - 1, w, dtype=torch.float32, device=memory.device),
                indexing="ij",
            )
            grid = torch.cat([grid_x.unsqueeze(-1), grid_y.unsqueeze(-1)], -1)
            scale = torch.cat([valid_w.unsqueeze(-1), valid_h.unsqueeze(-1)], 1).view(n, 1, 1, 2)
            grid = (grid.unsqueeze(0).expand(n, -1, -1, -1) + 0.5) / scale
            wh = torch.ones_like(grid) * 0.05 * (2.0**lvl)
            proposals.append(torch.cat((grid, wh), -1).view(n, -1, 4))
            start += h * w
        output_proposals = torch.cat(proposals, 1)
        valid = ((output_proposals > 0.01) & (output_proposals < 0.99)).all(-1, keepdim=True)
        output_proposals = torch.log(output_proposals / (1 - output_proposals))
        output_proposals = output_proposals.masked_fill(memory_padding_mask.unsqueeze(-1), float("inf"))
        output_proposals = output_proposals.masked_fill(~valid, float("inf"))
        output_memory = memory.masked_fill(memory_padding_mask.unsqueeze(-1), 0.0).masked_fill(~valid, 0.0)
        return self.enc_output_norm(self.enc_output(output_memory)), output_proposals

    def forward(
        self, srcs: list[torch.Tensor], masks: list[torch.Tensor], tgt: torch.Tensor, query_pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
        """[PATCH] maps + padding masks per level, [DET] tokens (B, D, C) and positions (1, D, C).

        Returns (decoder states (layers+1, B, D, C), initial 2-d references, per-layer references,
        token-label logits per level or None).
        """
        flat_src, flat_mask, shapes = [], [], []
        for src, mask in zip(srcs, masks, strict=True):
            _, _, h, w = src.shape
            shapes.append((h, w))
            flat_src.append(src.flatten(2).transpose(1, 2))
            flat_mask.append(mask.flatten(1))
        memory = torch.cat(flat_src, 1)
        mask_flatten = torch.cat(flat_mask, 1)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=memory.device)
        level_start_index = torch.cat((spatial_shapes.new_zeros((1,)), spatial_shapes.prod(1).cumsum(0)[:-1]))
        valid_ratios = torch.stack([self.get_valid_ratio(m) for m in masks], 1)
        bs = memory.shape[0]
        query_pos = query_pos.expand(bs, -1, -1)

        token_logits = None
        if self.token_label:
            output_memory, _ = self.gen_encoder_output_proposals(memory, mask_flatten, spatial_shapes)
            token_class = self.token_embed(output_memory)
            token_logits = [
                token_class[:, start : start + h * w, :].view(bs, h, w, _TOKEN_LABEL_CLASSES)
                for start, (h, w) in zip(level_start_index.tolist(), shapes, strict=True)
            ]

        reference_points = self.reference_points(query_pos).sigmoid()
        hs, inter_references = self.decoder(
            tgt, reference_points, memory, spatial_shapes, level_start_index, valid_ratios, query_pos, mask_flatten
        )
        return hs, reference_points, inter_references, token_logits


def build_deformable_transformer(args) -> DeformableTransformer:
    """The neck from the CLI arguments (`--reduced_dim`, `--nheads`, `--dec_layers`, `--dim_feedforward`, ...)."""
    return DeformableTransformer(
        d_model=args.reduced_dim,
        nhead=args.nheads,
        num_decoder_layers=args.dec_layers,
        dim_feedforward=args.dim_feedforward,
        dropout=args.dropout,
        activation="relu",
        return_intermediate_dec=True,
        num_feature_levels=args.num_feature_levels,
        dec_n_points=args.dec_n_points,
        token_label=args.token_label,
    )
