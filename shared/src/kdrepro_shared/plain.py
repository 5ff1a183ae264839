"""Turn a run's arguments into plain data (scalars, lists, str-keyed dicts) for YAML files and checkpoints."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

# numpy scalars become the Python scalars YAML and weights-only loading accept; bool before int (bool is an int).
_SCALARS = ((bool | np.bool_, bool), (numbers.Integral, int), (numbers.Real, float))


def to_plain(value: Any) -> Any:
    """`value` with scalars (numpy's as Python's) and containers kept, and anything else (paths, ...) as its str."""
    if value is None or isinstance(value, str):
        return value
    for kinds, cast in _SCALARS:
        if isinstance(value, kinds):
            return cast(value)
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    return str(value)


def args_to_dict(args: Any) -> dict[str, Any]:
    """A run's arguments (argparse.Namespace, SimpleNamespace or mapping), in their order, as a dict of plain data."""
    if isinstance(args, Mapping):
        return to_plain(args)
    if hasattr(args, "__dict__"):
        return to_plain(vars(args))
    raise TypeError(f"args must be an argparse.Namespace or a mapping, got {type(args).__name__}")
