"""The float32 islands of `--precision`: criteria whose softmaxes, KL, Gram or SVD terms must not run in bf16/fp16."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


def _as_float32(value: Any) -> Any:
    """Floating tensors (also inside lists/tuples) as contiguous float32; fp32 NCHW tensors are returned as they are."""
    if isinstance(value, torch.Tensor):
        return value.float().contiguous() if value.is_floating_point() else value
    if isinstance(value, list | tuple):
        return type(value)(_as_float32(item) for item in value)
    return value


def _device_type(values: Any) -> str:
    """The device type of the first tensor in `values` (searching lists/tuples), CPU if there is none."""
    for value in values:
        if isinstance(value, torch.Tensor):
            return value.device.type
        if isinstance(value, list | tuple) and value:
            return _device_type(value)
    return "cpu"


def float32_forward(forward: F) -> F:
    """Run a criterion's forward with autocast off on float32 inputs; without autocast the values are unchanged."""

    @functools.wraps(forward)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(_device_type([*args, *kwargs.values()]), enabled=False):
            return forward(self, *_as_float32(args), **{key: _as_float32(value) for key, value in kwargs.items()})

    return wrapper  # type: ignore[return-value]
