"""DeiT students of VkD (`models/deit.py`): co-advise conv stem and a distillation token = mean of the patch tokens.

The 8 factories are registered with timm under the original names (this replaces timm's own `deit_*` entries,
as the original does); `DEIT_MODELS` maps the CLI `--student-model` keys to them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from timm.layers import trunc_normal_
from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer, _cfg
from torch import nn

__all__ = [
    "DEIT_MODELS",
    "DistilledVisionTransformer",
    "conv_embed",
    "deit_base_distilled_patch16_224",
    "deit_base_distilled_patch16_384",
    "deit_base_patch16_224",
    "deit_base_patch16_384",
    "deit_small_distilled_patch16_224",
    "deit_small_patch16_224",
    "deit_tiny_distilled_patch16_224",
    "deit_tiny_patch16_224",
]

# Official DeiT weights behind the original's `pretrained=True` branches; only the plain ViTs can load them.
_PRETRAINED_URLS = {
    "deit_tiny_patch16_224": "https://dl.fbaipublicfiles.com/deit/deit_tiny_patch16_224-a1311bcf.pth",
    "deit_small_patch16_224": "https://dl.fbaipublicfiles.com/deit/deit_small_patch16_224-cd65a155.pth",
    "deit_base_patch16_224": "https://dl.fbaipublicfiles.com/deit/deit_base_patch16_224-b5f2ef4d.pth",
    "deit_base_patch16_384": "https://dl.fbaipublicfiles.com/deit/deit_base_patch16_384-8de9b5d1.pth",
}
# Arguments timm's `create_model` passes to every factory; the original's factories choke on them under timm 1.0.
_TIMM_FACTORY_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def _register(fn: Callable[..., VisionTransformer]) -> Callable[..., VisionTransformer]:
    """`timm.models.register_model`, without timm's warning that the name replaces its own `deit_*` entry."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f"Overwriting {fn.__name__} in registry", category=UserWarning)
        return register_model(fn)


class conv_embed(nn.Module):  # noqa: N801 -- original class name
    """Co-advise CiVT conv stem: 7×7/2 conv + two 3×3 convs (BN, ReLU), then an 8×8/8 patch projection."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(True),
            nn.Conv2d(64, 64, 3, 1, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(True),
            nn.Conv2d(64, 64, 3, 1, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(True),
        )
        self.proj = nn.Conv2d(64, embed_dim, kernel_size=8, stride=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, 3, H, W) images to (B, N, D) tokens."""
        return self.proj(self.conv(x)).flatten(2).transpose(1, 2)


class DistilledVisionTransformer(VisionTransformer):
    """timm ViT with the conv stem, 2 prefix tokens (cls, mean-of-patches "dist" token) and a second head.

    The token layout is hard-wired to 14×14 patches (pos_embed of 198 tokens), so only 223–238 px inputs work.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_patches = 14 * 14
        del self.patch_embed
        self.conv_embed = conv_embed(self.embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 2, self.embed_dim))
        self.head_dist = nn.Linear(self.embed_dim, self.num_classes) if self.num_classes > 0 else nn.Identity()
        trunc_normal_(self.pos_embed, std=0.02)
        self.head_dist.apply(self._init_weights)
        self.conv_embed.apply(self.init_weight)

    def init_weight(self, module: nn.Module) -> None:
        """Kaiming-normal init of every Conv2d under `module` (applied per submodule, as the original does)."""
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the normalised cls token (B, D), dist token (B, D) and patch tokens (B, 196, D)."""
        x_conv = self.conv_embed(x)
        cls_tokens = self.cls_token.expand(x.shape[0], -1, -1)
        dist_token = x_conv.mean(1, keepdim=True)
        x = torch.cat((cls_tokens, dist_token, x_conv), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x[:, 0], x[:, 1], x[:, 2:]

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Train mode: (cls logits, dist logits); eval mode: their average."""
        x_cls, x_dist, _ = self.forward_features(x)
        x_cls = self.head(x_cls)
        x_dist = self.head_dist(x_dist)
        if self.training:
            return x_cls, x_dist
        return (x_cls + x_dist) / 2


def _build(
    cls: type[VisionTransformer], name: str, pretrained: bool, kwargs: dict[str, Any], **arch: Any
) -> VisionTransformer:
    """Build a DeiT of the given architecture; `pretrained` loads the official DeiT weights (plain ViTs only)."""
    for key in _TIMM_FACTORY_KWARGS:
        kwargs.pop(key, None)
    model = cls(patch_size=16, mlp_ratio=4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), **arch, **kwargs)
    model.default_cfg = _cfg()
    if pretrained:
        if name not in _PRETRAINED_URLS:
            raise ValueError(
                f"{name}: the official DeiT distilled weights do not fit VkD's conv-stem student (the original's "
                "pretrained branch fails the same way); build it with pretrained=False"
            )
        state = torch.hub.load_state_dict_from_url(_PRETRAINED_URLS[name], map_location="cpu", check_hash=True)
        model.load_state_dict(state["model"])
    return model


@_register
def deit_tiny_patch16_224(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """Plain DeiT-Ti (timm ViT, patch embed); cannot be distilled (its `forward_features` returns one tensor)."""
    return _build(VisionTransformer, "deit_tiny_patch16_224", pretrained, kwargs, embed_dim=192, depth=12, num_heads=3)


@_register
def deit_small_patch16_224(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """Plain DeiT-S."""
    return _build(VisionTransformer, "deit_small_patch16_224", pretrained, kwargs, embed_dim=384, depth=12, num_heads=6)


@_register
def deit_base_patch16_224(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """Plain DeiT-B."""
    return _build(VisionTransformer, "deit_base_patch16_224", pretrained, kwargs, embed_dim=768, depth=12, num_heads=12)


@_register
def deit_tiny_distilled_patch16_224(pretrained: bool = False, **kwargs: Any) -> DistilledVisionTransformer:
    """VkD DeiT-Ti student (D=192, 3 heads)."""
    return _build(
        DistilledVisionTransformer,
        "deit_tiny_distilled_patch16_224",
        pretrained,
        kwargs,
        embed_dim=192,
        depth=12,
        num_heads=3,
    )


@_register
def deit_small_distilled_patch16_224(pretrained: bool = False, **kwargs: Any) -> DistilledVisionTransformer:
    """VkD DeiT-S student (D=384, 6 heads)."""
    return _build(
        DistilledVisionTransformer,
        "deit_small_distilled_patch16_224",
        pretrained,
        kwargs,
        embed_dim=384,
        depth=12,
        num_heads=6,
    )


@_register
def deit_base_distilled_patch16_224(pretrained: bool = False, **kwargs: Any) -> DistilledVisionTransformer:
    """VkD DeiT-B student (D=768, 12 heads)."""
    return _build(
        DistilledVisionTransformer,
        "deit_base_distilled_patch16_224",
        pretrained,
        kwargs,
        embed_dim=768,
        depth=12,
        num_heads=12,
    )


@_register
def deit_base_patch16_384(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """Plain DeiT-B at 384 px."""
    return _build(
        VisionTransformer,
        "deit_base_patch16_384",
        pretrained,
        kwargs,
        img_size=384,
        embed_dim=768,
        depth=12,
        num_heads=12,
    )


@_register
def deit_base_distilled_patch16_384(pretrained: bool = False, **kwargs: Any) -> DistilledVisionTransformer:
    """Distilled DeiT-B at 384 px; registered only (its 198-token pos_embed cannot take 384 px inputs)."""
    return _build(
        DistilledVisionTransformer,
        "deit_base_distilled_patch16_384",
        pretrained,
        kwargs,
        img_size=384,
        embed_dim=768,
        depth=12,
        num_heads=12,
    )


DEIT_MODELS: dict[str, Callable[..., VisionTransformer]] = {
    "deit_ti_distilled": deit_tiny_distilled_patch16_224,
    "deit_s_distilled": deit_small_distilled_patch16_224,
    "deit_b_distilled": deit_base_distilled_patch16_224,
    "deit_ti": deit_tiny_patch16_224,
    "deit_s": deit_small_patch16_224,
    "deit_b": deit_base_patch16_224,
}
