"""Capture and restore everything a training run needs to continue after a restart as if it had never stopped.

The captured dict holds only plain types and tensors (state dicts, counters, RNG states), so it is written with
`save` and read back with `load(..., weights_only=True)`. Capture at an epoch boundary: a DataLoader draws an
epoch's shuffle order when the epoch starts, so a mid-epoch resume would not replay the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from kdrepro_shared.errors import CheckpointError

TRAIN_STATE_VERSION = 1
_VERSION_KEY = "train_state_version"
_LOAD_ERRORS = (RuntimeError, ValueError, KeyError, TypeError)


class Stateful(Protocol):
    """Anything with torch's `state_dict` / `load_state_dict` pair: schedulers, EMA helpers, modules."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> Any: ...


@dataclass
class TrainState:
    """The progress counters and user extras `restore_train_state` hands back to the training loop."""

    epoch: int
    step: int
    extra: dict[str, Any] = field(default_factory=dict)


def capture_train_state(
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Stateful | None = None,
    scaler: torch.amp.GradScaler | None = None,
    epoch: int = 0,
    step: int = 0,
    ema: Stateful | None = None,
    extra: Mapping[str, Any] | None = None,
    generators: Sequence[torch.Generator] = (),
) -> dict[str, Any]:
    """Return the run's state (state dicts, counters, every RNG) as a dict `save` can write; save it right away.

    Like `state_dict()`, the model and optimizer tensors are shared with the live objects, not copied. A model
    wrapped in DDP/DataParallel is stored as its inner module, so the state loads into an unwrapped model too.
    """
    state: dict[str, Any] = {
        _VERSION_KEY: TRAIN_STATE_VERSION,
        "model": _unwrap(model).state_dict(),
        "epoch": int(epoch),
        "step": int(step),
        "extra": dict(extra or {}),
        "rng": _capture_rng(generators),
    }
    for name, component in _components(optimizer, scheduler, scaler, ema):
        if component is not None:
            state[name] = component.state_dict()
    return state


def restore_train_state(
    state: Mapping[str, Any],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Stateful | None = None,
    scaler: torch.amp.GradScaler | None = None,
    ema: Stateful | None = None,
    generators: Sequence[torch.Generator] = (),
    strict: bool = True,
) -> TrainState:
    """Load a `capture_train_state` dict into the given objects and the global RNGs; return epoch, step, extra.

    `strict` applies to the model's (and a module EMA's) keys and makes a passed object whose state is missing an
    error; with `strict=False` such objects are left as they are. The generators must match those captured, in order.
    """
    if not isinstance(state, Mapping) or state.get(_VERSION_KEY) != TRAIN_STATE_VERSION:
        raise CheckpointError(
            f"checkpoint is not a train state written by capture_train_state (no {_VERSION_KEY!r}: "
            f"{TRAIN_STATE_VERSION} key)"
        )
    _load_component("model", _unwrap(model), state["model"], strict)
    for name, component in _components(optimizer, scheduler, scaler, ema):
        if component is None:
            continue
        if name not in state:
            if strict:
                raise CheckpointError(f"train state holds no {name} state; pass {name}=None or strict=False")
            continue
        _load_component(name, component, state[name], strict)
    _restore_rng(state["rng"], generators)
    return TrainState(epoch=int(state["epoch"]), step=int(state["step"]), extra=dict(state["extra"]))


def _unwrap(model: Any) -> Any:
    """Return the module inside a DDP/DataParallel wrapper, so its keys carry no `module.` prefix."""
    return model.module if isinstance(model, DataParallel | DistributedDataParallel) else model


def _components(
    optimizer: Stateful | None, scheduler: Stateful | None, scaler: Stateful | None, ema: Stateful | None
) -> tuple[tuple[str, Any], ...]:
    """Name the optional stateful objects, in the order they are captured and restored."""
    return (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler), ("ema", _unwrap(ema)))


def _load_component(name: str, component: Any, component_state: Any, strict: bool) -> None:
    """Load one state dict, turning torch's multi-line mismatch errors into a one-line `CheckpointError`."""
    try:
        if isinstance(component, nn.Module):
            component.load_state_dict(component_state, strict=strict)
        else:
            component.load_state_dict(component_state)
    except _LOAD_ERRORS as err:
        reason = " ".join(str(err).split())
        raise CheckpointError(f"cannot restore the {name} state: {type(err).__name__}: {reason}") from None


def _capture_rng(generators: Sequence[torch.Generator]) -> dict[str, Any]:
    """Return python, numpy, torch CPU, every CUDA device's and the given generators' RNG states as tensors."""
    py_version, py_internal, py_gauss_next = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_cached_gaussian = np.random.get_state(legacy=True)
    return {
        "python": {
            "version": py_version,
            "state": torch.tensor(py_internal, dtype=torch.int64),
            "gauss_next": py_gauss_next,
        },
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": [generator.get_state() for generator in generators],
    }


def _restore_rng(rng: Mapping[str, Any], generators: Sequence[torch.Generator]) -> None:
    """Set every RNG `_capture_rng` recorded; CUDA states go to the devices present, in index order."""
    if len(generators) != len(rng["generators"]):
        raise CheckpointError(
            f"train state holds {len(rng['generators'])} torch.Generator states but {len(generators)} generators "
            "were passed; pass the same generators, in the same order, as when it was captured"
        )
    py = rng["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss_next"]))
    nps = rng["numpy"]
    keys = nps["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state((nps["name"], keys, nps["pos"], nps["has_gauss"], nps["cached_gaussian"]))
    torch.set_rng_state(rng["torch"].cpu())
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(rng["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)
    for generator, generator_state in zip(generators, rng["generators"], strict=True):
        generator.set_state(generator_state.cpu())
