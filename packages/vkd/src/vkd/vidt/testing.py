"""Deterministic detector weights for the ViDT parity tests (the recipe the fixture recorders ran on the original).

Every floating-point entry gets `vkd.testing.fill_value(key, shape)`; entries that alias one tensor (the box heads
seen both as `bbox_embed.*` and `transformer.decoder.bbox_embed.*`, or the shared heads without box refinement)
all get the value of their alphabetically first key, so the result never depends on state_dict order. Integer
buffers (`relative_position_index`) keep their values.
"""

from __future__ import annotations

import torch
from torch import nn

from vkd.testing import fill_value

__all__ = ["fill_detector"]


def fill_detector(module: nn.Module) -> nn.Module:
    """Load deterministic values into `module` (a detector or any part of it) and return it."""
    state = module.state_dict()
    canonical: dict[tuple[int, tuple[int, ...]], str] = {}
    for key, value in state.items():
        alias = (value.data_ptr(), tuple(value.shape))
        canonical[alias] = min(canonical.get(alias, key), key)
    filled: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not value.is_floating_point():
            filled[key] = value
            continue
        filled[key] = fill_value(canonical[(value.data_ptr(), tuple(value.shape))], tuple(value.shape))
    module.load_state_dict(filled)
    return module
