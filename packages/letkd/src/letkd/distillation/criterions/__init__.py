"""Criterion factory: `factory(name, opt)` imports `criterions.<name>` and calls its `create_criterion(opt)`."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from torch import nn

from kdrepro_shared.errors import KdReproError

CRITERIONS = ("KD", "subclass_loss")


def factory(criterion_name: str, *args: Any, **kwargs: Any) -> nn.Module:
    """Build the criterion defined in module `criterion_name` (one of `CRITERIONS`)."""
    if criterion_name not in CRITERIONS:
        raise KdReproError(f"unknown criterion {criterion_name!r}; valid: {', '.join(CRITERIONS)}")
    module = import_module(f"{__name__}.{criterion_name}")
    return module.create_criterion(*args, **kwargs)
