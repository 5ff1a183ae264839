"""A feature extractor made of named sequential blocks that can return several intermediate features at once."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kdrepro_shared.errors import KdReproError


class SequentialFeatureExtractorAbstractClass(nn.Module):
    """Runs `feature_blocks` in order; `forward(x, out_feat_keys)` returns the outputs of the named blocks.

    The blocks are kept in a ModuleList called `_feature_blocks`, so state_dict keys read `_feature_blocks.<i>.…`.
    """

    def __init__(self, all_feat_names: list[str], feature_blocks: list[nn.Module]) -> None:
        super().__init__()
        if not isinstance(feature_blocks, list) or not isinstance(all_feat_names, list):
            raise KdReproError("all_feat_names and feature_blocks must be lists")
        if len(all_feat_names) != len(feature_blocks):
            raise KdReproError(
                f"got {len(all_feat_names)} feature names for {len(feature_blocks)} feature blocks; they must pair up"
            )
        self.all_feat_names = all_feat_names
        self._feature_blocks = nn.ModuleList(feature_blocks)

    def _parse_out_keys_arg(self, out_feat_keys: Sequence[str] | None) -> tuple[list[str], int]:
        """Check the requested names (default: the last block) and return them with the deepest block index."""
        keys = [self.all_feat_names[-1]] if out_feat_keys is None else list(out_feat_keys)
        if not keys:
            raise KdReproError("empty list of output feature keys")
        for i, key in enumerate(keys):
            if key not in self.all_feat_names:
                raise KdReproError(f"feature {key!r} does not exist; existing features: {self.all_feat_names}")
            if key in keys[:i]:
                raise KdReproError(f"duplicate output feature key {key!r}")
        return keys, max(self.all_feat_names.index(key) for key in keys)

    def forward(self, x: torch.Tensor, out_feat_keys: Sequence[str] | None = None) -> torch.Tensor | list[torch.Tensor]:
        """The requested features in the order asked; a single tensor when one feature is asked."""
        keys, deepest = self._parse_out_keys_arg(out_feat_keys)
        outputs: list[torch.Tensor | None] = [None] * len(keys)
        feat = x
        for block, name in zip(self._feature_blocks[: deepest + 1], self.all_feat_names, strict=False):
            feat = block(feat)
            if name in keys:
                outputs[keys.index(name)] = feat
        return outputs[0] if len(outputs) == 1 else outputs


def flatten_module(model: nn.Module) -> None:
    """Print every leaf module of `model`, depth first (a debugging aid of the original)."""
    children = list(model.children())
    if not children:
        print(model)
    for child in children:
        flatten_module(child)
