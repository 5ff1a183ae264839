"""Building blocks shared by the letKD networks: the backbone split, the cosine 1×1 conv, reshaping and pooling.

`split_network` cuts a full model into the feature extractor the distillation losses read and the classifier tail;
its `nn.Sequential` indices are the state_dict keys of every checkpoint the algorithms write.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kdrepro_shared.errors import KdReproError

POOL_TYPES = ("avg", "max")


class Reshape(nn.Module):
    """`x.view(*shape)` as a module, so the classifier tail of a split network stays a plain `nn.Sequential`."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """View `x` with the stored shape."""
        return x.view(self.shape)


def global_pooling(x: torch.Tensor, pool_type: str) -> torch.Tensor:
    """Average or max pool a (B, C, H, W) map over its whole spatial extent, keeping a 1×1 map."""
    if x.dim() != 4:
        raise KdReproError(f"global pooling expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    if pool_type == "avg":
        return F.avg_pool2d(x, (x.size(2), x.size(3)))
    if pool_type == "max":
        return F.max_pool2d(x, (x.size(2), x.size(3)))
    raise KdReproError(f"unknown pooling type {pool_type!r}; valid: {', '.join(POOL_TYPES)}")


class GlobalPooling(nn.Module):
    """Module form of `global_pooling` (WRN's `gpool`)."""

    def __init__(self, pool_type: str) -> None:
        super().__init__()
        if pool_type not in POOL_TYPES:
            raise KdReproError(f"unknown pooling type {pool_type!r}; valid: {', '.join(POOL_TYPES)}")
        self.pool_type = pool_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool `x` to 1×1."""
        return global_pooling(x, self.pool_type)


class Conv2dCos(nn.Module):
    """1×1 convolution of L2-normalised inputs with L2-normalised filters, times an optional (learnable) scale.

    Each output is scale·cos(x(h, w), w_k): the template score the KD layer and the BoW predictor compute.
    A falsy `scale` (None or 0) means no scale, as in the original.
    """

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        bias: bool = False,
        scale: float | None = None,
        learn_scale: bool = True,
    ) -> None:
        super().__init__()
        self.in_planes = in_planes
        self.out_planes = out_planes
        weight = torch.empty(out_planes, in_planes, 1, 1).normal_(0.0, math.sqrt(2.0 / in_planes))
        self.weight = nn.Parameter(weight, requires_grad=True)
        self.bias = nn.Parameter(torch.zeros(out_planes), requires_grad=True) if bias else None
        self.scale = nn.Parameter(torch.full((1,), float(scale)), requires_grad=learn_scale) if scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Cosine scores of every spatial position against every filter."""
        x = F.normalize(x, p=2, dim=1, eps=1e-12)
        weight = F.normalize(self.weight, p=2, dim=1, eps=1e-12)
        if self.scale is not None:
            weight = weight * self.scale.view(-1, 1, 1, 1)
        return F.conv2d(x, weight, bias=self.bias, stride=1, padding=0)


def _flatten_one_level(modules: list[nn.Module]) -> list[nn.Module]:
    """Replace every container (Sequential, ModuleList) by its items; other modules stay as they are."""
    flat: list[nn.Module] = []
    for module in modules:
        if isinstance(module, nn.Sequential | nn.ModuleList):
            flat.extend(module)
        else:
            flat.append(module)
    return flat


def split_network(
    model: nn.Module, extract_from_layer: Sequence[str], after_relu: Sequence[bool]
) -> tuple[nn.Sequential, nn.Sequential]:
    """Split `model` into (feature extractor, classifier) at the top-level child named `extract_from_layer[0]`.

    The extractor holds the children up to and including that one (plus the following `bn*` child and the ReLU
    when `after_relu[0]`); the classifier holds the rest. Models with `flatten_when_split` (MobileNetV2) have the
    extractor's containers unrolled one level, which fixes the checkpoint indices the original wrote.
    """
    if len(extract_from_layer) != 1 or len(after_relu) != 1:
        raise KdReproError(
            f"split_network takes one extraction point, got extract_from={list(extract_from_layer)} "
            f"extract_after_relu={list(after_relu)}; the multi-point split of the original serves only its ImageNet "
            "VGG9/ResNet34 backbones, which are not ported"
        )
    names = list(model._modules)
    target = extract_from_layer[0]
    if target not in names:
        raise KdReproError(
            f"extract_from {target!r} is not a top-level child of {type(model).__name__}; valid: {', '.join(names)}"
        )
    end = names.index(target) + 1
    if after_relu[0]:
        if end < len(names) and names[end].startswith("bn"):
            end += 1
        if end >= len(names):
            raise KdReproError(f"extract_after_relu=True needs a ReLU child after {target!r} in {type(model).__name__}")
        end += 1
    children = [model._modules[name] for name in names]
    features, classifier = children[:end], children[end:]
    if getattr(model, "flatten_when_split", False):
        features = _flatten_one_level(features)
    return nn.Sequential(*features), nn.Sequential(*classifier)
