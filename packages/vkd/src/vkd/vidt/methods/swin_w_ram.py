"""Swin Transformer with ViDT's Reconfigured Attention Module (RAM), as `methods/swin_w_ram.py` of the original.

[DET] tokens ride along with the [PATCH] tokens through every block: [PATCH×PATCH] windowed attention with
relative-position bias (shifted windows every other block), [DET×DET] self-attention and, at the stages in
`cross_indices`, global [DET×[PATCH, DET]] cross-attention with sinusoidal patch positions. Every stage, the last
one included, ends with a patch merging that concatenates the [DET] tokens 4× along channels; the last one maps to
256 channels. State-dict keys equal the original's, so its ImageNet backbones and ViDT checkpoints load.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.layers import DropPath, to_2tuple, trunc_normal_
from torch import nn

from kdrepro_shared import checkpoints
from kdrepro_shared.errors import KdReproError

__all__ = [
    "BACKBONES",
    "PatchEmbed",
    "PatchMerging",
    "ReconfiguredAttentionModule",
    "SwinTransformer",
    "SwinTransformerBlock",
    "masked_sin_pos_encoding",
    "swin_base_win7",
    "swin_large_win7",
    "swin_nano",
    "swin_small",
    "swin_tiny",
]

# Cross-attention and shifted-window masks fill blocked positions with this value (not -inf), as the original.
_MASK_FILL = -100.0


class Mlp(nn.Module):
    """Two-layer GELU MLP of a Swin block."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def masked_sin_pos_encoding(
    x: torch.Tensor, mask: torch.Tensor, num_pos_feats: int, temperature: float = 10000, scale: float = 2 * math.pi
) -> torch.Tensor:
    """DETR's sine encoding of (y, x) over the unpadded area of `mask` (True = padding); returns (B, H, W, feats)."""
    half = num_pos_feats // 2
    valid = ~mask
    y_embed = valid.cumsum(1, dtype=torch.float32)
    x_embed = valid.cumsum(2, dtype=torch.float32)
    eps = 1e-6
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    dim_t = torch.arange(half, dtype=torch.float32, device=x.device)
    dim_t = temperature ** (2 * (dim_t // 2) / half)
    pos_x = x_embed[..., None] / dim_t
    pos_y = y_embed[..., None] / dim_t
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3)


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) -> (B·nW, ws, ws, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, c)


def window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """(B·nW, ws, ws, C) -> (B, H, W, C)."""
    b = int(windows.shape[0] / (h * w / window_size / window_size))
    x = windows.view(b, h // window_size, w // window_size, window_size, window_size, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


def _relative_position_index(window: tuple[int, int]) -> torch.Tensor:
    """Index into the (2Wh−1)(2Ww−1) bias table for every pair of positions in a window: (Wh·Ww, Wh·Ww)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window[0]), torch.arange(window[1]), indexing="ij"))
    coords = coords.flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window[0] - 1
    rel[:, :, 1] += window[1] - 1
    rel[:, :, 0] *= 2 * window[1] - 1
    return rel.sum(-1)


class ReconfiguredAttentionModule(nn.Module):
    """Swin's window attention re-wired for [PATCH] and [DET] tokens (RAM); the parameters are Swin's own."""

    def __init__(  # noqa: PLR0917 -- the original's positional signature
        self,
        dim: int,
        window_size: tuple[int, int],
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if window_size[0] != window_size[1]:
            raise KdReproError(f"RAM needs square windows, got {window_size}")
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size[0] - 1) * (2 * window_size[1] - 1), num_heads)
        )
        self.register_buffer("relative_position_index", _relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.softmax = nn.Softmax(dim=-1)

    def _patch_attention(self, patch_qkv: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Windowed [PATCH×PATCH] attention of (B, Hp, Wp, 3C) qkv; returns (B, Hp, Wp, C)."""
        _, h, w, c3 = patch_qkv.shape
        c = c3 // 3
        ws = self.window_size[0]
        area = ws * ws
        windows = window_partition(patch_qkv, ws)
        nwb = windows.shape[0]
        qkv = windows.reshape(nwb, area, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(area, area, -1)
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(nwb // nw, nw, self.num_heads, area, area) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, area, area)
        attn = self.attn_drop(self.softmax(attn))
        out = (attn @ v).transpose(1, 2).reshape(nwb, ws, ws, c)
        return window_reverse(out, ws, h, w)

    def forward(
        self,
        x: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
        det: torch.Tensor,
        mask: torch.Tensor | None = None,
        cross_attn: bool = False,
        cross_attn_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend [PATCH] tokens `x` (B, Hp, Wp, C) in windows and [DET] tokens `det` (B, D, C) globally.

        With `cross_attn`, `x` is (shifted padded patches, unshifted unpadded patches + positions) and [DET]
        tokens also attend to every patch of the second map; `mask` is the shifted-window mask.
        """
        if cross_attn:
            b, h, w, c = x[0].shape
            _, cross_h, cross_w, _ = x[1].shape
            n, cross_n = h * w, cross_h * cross_w
            qkv = self.qkv(torch.cat([x[0].view(b, n, c), x[1].view(b, cross_n, c), det], dim=1))
            patch_qkv, cross_qkv, det_qkv = qkv[:, :n], qkv[:, n : n + cross_n], qkv[:, n + cross_n :]
        else:
            b, h, w, c = x.shape
            n = h * w
            qkv = self.qkv(torch.cat([x.view(b, n, c), det], dim=1))
            patch_qkv, det_qkv = qkv[:, :n], qkv[:, n:]
        head_dim = c // self.num_heads
        patch_x = self._patch_attention(patch_qkv.view(b, h, w, -1), mask)

        det_qkv = det_qkv.view(b, -1, 3, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        det_q, det_k, det_v = det_qkv[0], det_qkv[1], det_qkv[2]
        if cross_attn:
            # keys/values of every (unshifted) patch join the [DET] keys/values: [DET × [PATCH, DET]]
            patch_kv = cross_qkv.view(b, cross_h, cross_w, 3, self.num_heads, head_dim)[:, :, :, 1:]
            patch_kv = patch_kv.permute(3, 0, 4, 1, 2, 5).contiguous().view(2, b, self.num_heads, cross_n, -1)
            det_k = torch.cat([patch_kv[0], det_k], dim=2)
            det_v = torch.cat([patch_kv[1], det_v], dim=2)
        det_attn = (det_q * self.scale) @ det_k.transpose(-2, -1)
        if cross_attn_mask is not None:
            det_attn = det_attn + cross_attn_mask
        det_attn = self.attn_drop(self.softmax(det_attn))
        det_x = (det_attn @ det_v).transpose(1, 2).reshape(b, -1, c)

        out = self.proj_drop(self.proj(torch.cat([patch_x.view(b, n, c), det_x], dim=1)))
        return out[:, :n].view(b, h, w, c), out[:, n:]


class SwinTransformerBlock(nn.Module):
    """Swin block over bound [PATCH, DET] tokens; `det_pos_linear` (added by `finetune_det`) maps [DET] positions."""

    det_token_num: int
    det_pos_linear: nn.Linear

    def __init__(  # noqa: PLR0917 -- the original's positional signature
        self,
        dim: int,
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise KdReproError(f"shift_size must be in [0, window_size), got {shift_size} for window {window_size}")
        self.dim = dim
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.mlp_ratio = mlp_ratio
        self.norm1 = norm_layer(dim)
        self.attn = ReconfiguredAttentionModule(
            dim, to_2tuple(window_size), num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop,
            proj_drop=drop,
        )  # fmt: skip
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.H: int | None = None
        self.W: int | None = None

    def forward(
        self,
        x: torch.Tensor,
        mask_matrix: torch.Tensor,
        pos: tuple[torch.Tensor | None, torch.Tensor],
        cross_attn: bool,
        cross_attn_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """x: (B, H·W + D, C) bound tokens; pos: (patch sine positions or None, [DET] positions (1, D, pos_dim))."""
        b, length, c = x.shape
        h, w = self.H, self.W
        if length != h * w + self.det_token_num:
            raise ValueError(f"block input has {length} tokens, expected {h}*{w} + {self.det_token_num}")
        shortcut = x
        x = self.norm1(x)
        x, det = x[:, : h * w], x[:, h * w :]
        x = x.view(b, h, w, c)
        unpadded = x
        pad_r = (self.window_size - w % self.window_size) % self.window_size
        pad_b = (self.window_size - h % self.window_size) % self.window_size
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))

        patch_pos, det_pos = pos
        det = det + self.det_pos_linear(det_pos)
        if self.shift_size > 0:
            shifted = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
            attn_mask = mask_matrix
        else:
            shifted = x
            attn_mask = None
        attn_input = (shifted, unpadded + patch_pos) if cross_attn else shifted
        shifted, det = self.attn(
            attn_input, det=det, mask=attn_mask, cross_attn=cross_attn, cross_attn_mask=cross_attn_mask
        )
        if self.shift_size > 0:
            x = torch.roll(shifted, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        else:
            x = shifted
        if pad_r > 0 or pad_b > 0:
            x = x[:, :h, :w, :].contiguous()
        x = torch.cat([x.view(b, h * w, c), det], dim=1)
        x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2×2 patch merging (4C → 2C, or → 256 at the last stage); [DET] tokens are repeated 4× along channels.

    `expansion` and `norm2` are unused parameters the original keeps so that its checkpoints load.
    """

    det_token_num: int

    def __init__(self, dim: int, norm_layer: Callable[[int], nn.Module] = nn.LayerNorm, expand: bool = True) -> None:
        super().__init__()
        self.dim = dim
        out_dim = 2 * dim if expand else 256
        self.reduction = nn.Linear(4 * dim, out_dim, bias=False)
        self.norm = norm_layer(4 * dim)
        self.expansion = nn.Linear(dim, out_dim, bias=False)
        self.norm2 = norm_layer(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """x: (B, H·W + D, C) -> (B, ⌈H/2⌉·⌈W/2⌉ + D, out_dim)."""
        b, length, c = x.shape
        if length != h * w + self.det_token_num:
            raise ValueError(f"patch merging input has {length} tokens, expected {h}*{w} + {self.det_token_num}")
        x, det = x[:, : h * w], x[:, h * w :]
        x = x.view(b, h, w, c)
        if h % 2 == 1 or w % 2 == 1:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        x = torch.cat([x.view(b, -1, 4 * c), det.repeat(1, 1, 4)], dim=1)
        return self.reduction(self.norm(x))


def _shift_window_mask(hp: int, wp: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """Swin's (nW, ws², ws²) mask that keeps shifted windows from mixing regions that were not adjacent."""
    img_mask = torch.zeros((1, hp, wp, 1), device=device)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    region = 0
    for hs in bands:
        for ws in bands:
            img_mask[:, hs, ws, :] = region
            region += 1
    windows = window_partition(img_mask, window).view(-1, window * window)
    mask = windows.unsqueeze(1) - windows.unsqueeze(2)
    return mask.masked_fill(mask != 0, _MASK_FILL).masked_fill(mask == 0, 0.0)


class BasicLayer(nn.Module):
    """One Swin stage of RAM blocks followed by patch merging."""

    det_token_num: int

    def __init__(  # noqa: PLR0917 -- the original's positional signature
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float | Sequence[float] = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        last: bool = False,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.depth = depth
        self.dim = dim
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim=dim,
                num_heads=num_heads,
                window_size=window_size,
                shift_size=0 if i % 2 == 0 else window_size // 2,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop=drop,
                attn_drop=attn_drop,
                drop_path=drop_path[i] if isinstance(drop_path, Sequence) else drop_path,
                norm_layer=norm_layer,
            )
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim=dim, norm_layer=norm_layer, expand=not last)

    def forward(  # noqa: PLR0917 -- the original's positional signature
        self, x: torch.Tensor, h: int, w: int, det_pos: torch.Tensor, input_mask: torch.Tensor, cross_attn: bool
    ) -> tuple[torch.Tensor, int, int, torch.Tensor, int, int]:
        """Return (tokens before merging, H, W, merged tokens, ⌈H/2⌉, ⌈W/2⌉)."""
        b = x.shape[0]
        hp = math.ceil(h / self.window_size) * self.window_size
        wp = math.ceil(w / self.window_size) * self.window_size
        attn_mask = _shift_window_mask(hp, wp, self.window_size, self.shift_size, x.device)
        patch_pos = cross_attn_mask = None
        if cross_attn:
            if input_mask.shape[1:] != (h, w):
                input_mask = F.interpolate(input_mask[None].float(), size=(h, w)).to(torch.bool)[0]
            patch_pos = masked_sin_pos_encoding(x, input_mask, self.dim)
            # padded pixels are blocked (-100) as keys; the [DET] keys appended after them are always open
            cross_attn_mask = input_mask.float()
            cross_attn_mask = cross_attn_mask.masked_fill(cross_attn_mask != 0.0, _MASK_FILL).masked_fill(
                cross_attn_mask == 0.0, 0.0
            )
            cross_attn_mask = F.pad(cross_attn_mask.view(b, h * w)[:, None, None, :], (0, self.det_token_num), value=0)
        for blk in self.blocks:
            blk.H, blk.W = h, w
            x = blk(x, attn_mask, pos=(patch_pos, det_pos), cross_attn=cross_attn, cross_attn_mask=cross_attn_mask)
        return x, h, w, self.downsample(x, h, w), (h + 1) // 2, (w + 1) // 2


class PatchEmbed(nn.Module):
    """4×4 patch embedding (zero-padding the image to multiples of the patch) followed by LayerNorm."""

    def __init__(
        self,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.patch_size = to_2tuple(patch_size)
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.norm = norm_layer(embed_dim) if norm_layer is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        if w % self.patch_size[1] != 0:
            x = F.pad(x, (0, self.patch_size[1] - w % self.patch_size[1]))
        if h % self.patch_size[0] != 0:
            x = F.pad(x, (0, 0, 0, self.patch_size[0] - h % self.patch_size[0]))
        x = self.proj(x)
        if self.norm is not None:
            wh, ww = x.shape[2], x.shape[3]
            x = self.norm(x.flatten(2).transpose(1, 2)).transpose(1, 2).view(-1, self.embed_dim, wh, ww)
        return x


class SwinTransformer(nn.Module):
    """Swin backbone with RAM; call `finetune_det` before use to add [DET] tokens and their positions."""

    det_token: nn.Parameter
    det_pos_embed: nn.Parameter

    def __init__(  # noqa: PLR0917 -- the original's positional signature
        self,
        pretrain_img_size: int | Sequence[int] = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.2,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        out_indices: Sequence[int] = (1, 2, 3),
    ) -> None:
        super().__init__()
        self.pretrain_img_size = pretrain_img_size
        self.num_layers = len(depths)
        self.embed_dim = embed_dim
        self.out_indices = tuple(out_indices)
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, norm_layer)
        self.pos_drop = nn.Dropout(p=drop_rate)
        rates = [r.item() for r in torch.linspace(0, drop_path_rate, sum(depths))]
        self.layers = nn.ModuleList(
            BasicLayer(
                dim=int(embed_dim * 2**i),
                depth=depths[i],
                num_heads=num_heads[i],
                window_size=window_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=rates[sum(depths[:i]) : sum(depths[: i + 1])],
                norm_layer=norm_layer,
                last=i == self.num_layers - 1,
            )
            for i in range(self.num_layers)
        )
        self.num_features = [int(embed_dim * 2**i) for i in range(self.num_layers)]
        # unused LayerNorms the original keeps so that Swin's ImageNet checkpoints load (norm1..norm3)
        for i in self.out_indices:
            self.add_module(f"norm{i}", norm_layer(self.num_features[i]))

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Parameter names the detection optimizer keeps out of weight decay."""
        return {"det_pos_embed", "det_token"}

    def finetune_det(
        self, method: str, det_token_num: int = 100, pos_dim: int = 256, cross_indices: Sequence[int] = (3,)
    ) -> None:
        """Add the [DET] tokens, their learnable positions and per-block position projections (method `vidt`)."""
        if method != "vidt":
            raise KdReproError(f"method {method!r} is not supported; valid: vidt")
        self.method = method
        self.det_token_num = det_token_num
        self.det_token = nn.Parameter(torch.zeros(1, det_token_num, self.num_features[0]))
        trunc_normal_(self.det_token, std=0.02)
        self.pos_dim = pos_dim
        self.det_pos_embed = nn.Parameter(trunc_normal_(torch.zeros(1, det_token_num, pos_dim), std=0.02))
        self.num_channels = [*self.num_features[1:], pos_dim]
        self.cross_indices = list(cross_indices)
        self.mask_divisor = 2 ** (len(self.layers) - len(self.cross_indices))
        for layer in self.layers:
            layer.det_token_num = det_token_num
            layer.downsample.det_token_num = det_token_num
            for block in layer.blocks:
                block.det_token_num = det_token_num
                block.det_pos_linear = nn.Linear(pos_dim, block.dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Images (B, 3, H, W) and padding mask (B, H, W) → ([PATCH] maps at strides 8/16/32/64, [DET], positions).

        Returns the stage-2..4 maps before merging plus the final merged 256-channel map, the stage-4 [DET]
        tokens (B, 8C, D) and the learnable [DET] positions (1, pos_dim, D).
        """
        b = x.shape[0]
        x = self.patch_embed(x)
        wh, ww = x.size(2), x.size(3)
        x = self.pos_drop(x.flatten(2).transpose(1, 2))
        det_token = self.det_token.expand(b, -1, -1)
        det_pos = self.det_pos_embed
        mask = F.interpolate(mask[None].float(), size=(wh // self.mask_divisor, ww // self.mask_divisor))
        mask = mask.to(torch.bool)[0]
        patch_outs = []
        for stage, layer in enumerate(self.layers):
            x = torch.cat([x, det_token], dim=1)
            x_out, h, w, x, wh, ww = layer(
                x, wh, ww, input_mask=mask, det_pos=det_pos, cross_attn=stage in self.cross_indices
            )
            x, det_token = x[:, : -self.det_token_num], x[:, -self.det_token_num :]
            if stage > 0:
                patch_outs.append(x_out[:, : -self.det_token_num].view(b, h, w, -1).permute(0, 3, 1, 2))
        patch_outs.append(x.view(b, wh, ww, -1).permute(0, 3, 1, 2))
        det_tgt = x_out[:, -self.det_token_num :].permute(0, 2, 1)
        return patch_outs, det_tgt, det_pos.permute(0, 2, 1)


# name: (embed_dim, depths, heads, drop_path_rate, returned hidden dim, registry artifact, local cache file)
_CONFIGS: dict[str, tuple[int, tuple[int, ...], tuple[int, ...], float, int, str, str | None]] = {
    "swin_nano": (48, (2, 2, 6, 2), (3, 6, 12, 24), 0.0, 384, "swin/swin_nano_patch4_window7_224",
                  "ckpts/backbones/swin_nano_patch4_window7_224.pth"),
    "swin_tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24), 0.2, 768, "swin/swin_tiny_patch4_window7_224",
                  "ckpts/backbones/swin_tiny_patch4_window7_224.pth"),
    "swin_small": (96, (2, 2, 18, 2), (3, 6, 12, 24), 0.3, 768, "swin/swin_small_patch4_window7_224",
                   "ckpts/backbones/swin_small_patch4_window7_224.pth"),
    "swin_base_win7": (128, (2, 2, 18, 2), (4, 8, 16, 32), 0.3, 1024, "swin/swin_base_patch4_window7_224_22k", None),
    "swin_large_win7": (192, (2, 2, 18, 2), (6, 12, 24, 48), 0.3, 1024, "swin/swin_large_patch4_window7_224_22k",
                        None),
}  # fmt: skip


def _pretrained_file(name: str, pretrained: str) -> Path:
    """The backbone file for `--pre_trained`: a path as given; `imagenet` = the original's local cache, else fetch."""
    if pretrained != "imagenet":
        return Path(pretrained)
    _, _, _, _, _, artifact, local = _CONFIGS[name]
    if local is not None and Path(local).is_file():
        return Path(local)
    return checkpoints.fetch(artifact)


def _build(name: str, pretrained: str | None, **kwargs) -> tuple[SwinTransformer, int]:
    """Build backbone `name`; load `ckpt['model']` non-strictly unless `pretrained` is None/'none'."""
    embed_dim, depths, heads, drop_path, hidden_dim, _, _ = _CONFIGS[name]
    model = SwinTransformer(
        pretrain_img_size=[224, 224], embed_dim=embed_dim, depths=depths, num_heads=heads, window_size=7,
        drop_path_rate=drop_path, **kwargs,
    )  # fmt: skip
    if pretrained is None or pretrained == "none":
        return model, hidden_dim
    state = checkpoints.load(_pretrained_file(name, pretrained))
    if not isinstance(state, dict) or "model" not in state:
        raise KdReproError(f"backbone checkpoint {pretrained} has no 'model' entry (expected a Swin release file)")
    model.load_state_dict(state["model"], strict=False)
    print(f"Load the {name} backbone from {'ImageNet' if pretrained == 'imagenet' else pretrained}")
    return model, hidden_dim


def swin_nano(pretrained: str | None = None, **kwargs) -> tuple[SwinTransformer, int]:
    """Swin-nano (C=48, depths 2-2-6-2), ImageNet-1K weights from naver-ai's release."""
    return _build("swin_nano", pretrained, **kwargs)


def swin_tiny(pretrained: str | None = None, **kwargs) -> tuple[SwinTransformer, int]:
    """Swin-T (C=96, depths 2-2-6-2, drop path 0.2), ImageNet-1K weights."""
    return _build("swin_tiny", pretrained, **kwargs)


def swin_small(pretrained: str | None = None, **kwargs) -> tuple[SwinTransformer, int]:
    """Swin-S (C=96, depths 2-2-18-2, drop path 0.3), ImageNet-1K weights."""
    return _build("swin_small", pretrained, **kwargs)


def swin_base_win7(pretrained: str | None = None, **kwargs) -> tuple[SwinTransformer, int]:
    """Swin-B window 7 (C=128, depths 2-2-18-2, drop path 0.3), ImageNet-22K weights."""
    return _build("swin_base_win7", pretrained, **kwargs)


def swin_large_win7(pretrained: str | None = None, **kwargs) -> tuple[SwinTransformer, int]:
    """Swin-L window 7 (C=192, depths 2-2-18-2, drop path 0.3), ImageNet-22K weights."""
    return _build("swin_large_win7", pretrained, **kwargs)


# `--backbone_name` values of the original (the CoaT backbones are not reproduced: VkD never uses them)
BACKBONES: dict[str, Callable[..., tuple[SwinTransformer, int]]] = {
    "swin_nano": swin_nano,
    "swin_tiny": swin_tiny,
    "swin_small": swin_small,
    "swin_base_win7_22k": swin_base_win7,
    "swin_large_win7_22k": swin_large_win7,
}
