"""Tests for capture_train_state / restore_train_state: RNGs, wrapped models, components, and a bit-exact resume."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import kdrepro_shared
from kdrepro_shared.checkpoints.io import load, save
from kdrepro_shared.checkpoints.train_state import TrainState, capture_train_state, restore_train_state
from kdrepro_shared.errors import CheckpointError

WORKER = Path(__file__).with_name("_train_state_worker.py")


def _draws(generator: torch.Generator) -> list[float]:
    """Draw from every RNG a train state covers, including python's and numpy's cached Gaussians."""
    return [
        random.random(),
        random.gauss(0.0, 1.0),
        float(np.random.rand()),
        float(np.random.standard_normal()),
        float(torch.rand(())),
        float(torch.rand((), generator=generator)),
    ]


def _save_and_load(tmp_path: Path, state: dict) -> dict:
    """Round-trip a train state through `save` and a weights_only `load`, as a resumed run does."""
    target = tmp_path / "state.pt"
    save(target, state)
    return load(target, weights_only=True)


def test_rng_states_round_trip_through_weights_only_file(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(7)
    random.gauss(0.0, 1.0)  # leaves a cached Gaussian in python's state
    np.random.standard_normal()  # and in numpy's
    state = capture_train_state(model=nn.Linear(2, 2), generators=[generator])
    expected = _draws(generator)
    restore_train_state(_save_and_load(tmp_path, state), model=nn.Linear(2, 2), generators=[generator])
    assert _draws(generator) == expected


def test_counters_and_extra_come_back(tmp_path: Path) -> None:
    state = capture_train_state(model=nn.Linear(2, 2), epoch=3, step=120, extra={"best_acc": 71.5, "tag": "a"})
    restored = restore_train_state(_save_and_load(tmp_path, state), model=nn.Linear(2, 2))
    assert restored == TrainState(epoch=3, step=120, extra={"best_acc": 71.5, "tag": "a"})


def test_wrapped_model_is_saved_as_its_inner_module(tmp_path: Path) -> None:
    torch.manual_seed(0)
    inner = nn.Linear(3, 2)
    state = _save_and_load(tmp_path, capture_train_state(model=nn.DataParallel(inner)))
    assert set(state["model"]) == {"weight", "bias"}
    plain, wrapped = nn.Linear(3, 2), nn.DataParallel(nn.Linear(3, 2))
    restore_train_state(state, model=plain)
    restore_train_state(state, model=wrapped)
    for target in (plain, wrapped.module):
        assert torch.equal(target.weight, inner.weight)
        assert torch.equal(target.bias, inner.bias)


def test_optimizer_scheduler_scaler_and_ema_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    for _ in range(2):
        scaler.scale(model(torch.randn(4, 2)).sum()).backward()
        scaler.step(optimizer)
        scaler.update()
        ema.update_parameters(model)
        scheduler.step()
    state = _save_and_load(
        tmp_path, capture_train_state(model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, ema=ema)
    )

    new_model = nn.Linear(2, 1)
    new_optimizer = torch.optim.SGD(new_model.parameters(), lr=0.1, momentum=0.9)
    new_scheduler = torch.optim.lr_scheduler.StepLR(new_optimizer, step_size=1, gamma=0.5)
    new_scaler = torch.amp.GradScaler("cpu")
    new_ema = AveragedModel(new_model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    restore_train_state(
        state, model=new_model, optimizer=new_optimizer, scheduler=new_scheduler, scaler=new_scaler, ema=new_ema
    )

    assert new_scheduler.get_last_lr() == scheduler.get_last_lr() == [0.025]
    assert new_scaler.state_dict() == scaler.state_dict()
    for old, new in zip(optimizer.state.values(), new_optimizer.state.values(), strict=True):
        assert torch.equal(old["momentum_buffer"], new["momentum_buffer"])
    for key, value in ema.state_dict().items():
        assert torch.equal(new_ema.state_dict()[key], value)


def test_missing_component_is_an_error_unless_not_strict() -> None:
    state = capture_train_state(model=nn.Linear(2, 2))
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        restore_train_state(state, model=model, optimizer=optimizer)
    restore_train_state(state, model=model, optimizer=optimizer, strict=False)
    assert optimizer.param_groups[0]["lr"] == 0.1


def test_mismatched_model_gives_one_line_error() -> None:
    state = capture_train_state(model=nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="cannot restore the model state") as caught:
        restore_train_state(state, model=nn.Linear(3, 3))
    assert "\n" not in str(caught.value)


def test_generator_count_must_match() -> None:
    state = capture_train_state(model=nn.Linear(2, 2), generators=[torch.Generator()])
    with pytest.raises(CheckpointError, match=r"1 torch\.Generator states but 0 generators"):
        restore_train_state(state, model=nn.Linear(2, 2))


def test_plain_state_dict_is_not_a_train_state() -> None:
    with pytest.raises(CheckpointError, match="not a train state"):
        restore_train_state(nn.Linear(2, 2).state_dict(), model=nn.Linear(2, 2))


def _run_worker(*args: str | Path) -> None:
    """Run the worker script in a fresh python on the same kdrepro_shared this test imported."""
    package_root = str(Path(kdrepro_shared.__file__).parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run(
        [sys.executable, str(WORKER), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_resumed_run_is_bit_identical_to_straight_run(tmp_path: Path) -> None:
    straight, resumed, ckpt = tmp_path / "straight.pt", tmp_path / "resumed.pt", tmp_path / "half.pt"
    _run_worker("reference", straight, ckpt)
    _run_worker("resume", ckpt, resumed)

    expected, actual = torch.load(straight, weights_only=True), torch.load(resumed, weights_only=True)
    assert actual["step"] == expected["step"] == 16
    assert actual["lr"] == expected["lr"] == [0.1 * 0.5**4]
    for name, value in expected["model"].items():
        assert torch.equal(actual["model"][name], value), name
    assert actual["optimizer"]["param_groups"] == expected["optimizer"]["param_groups"]
    assert expected["optimizer"]["state"].keys() == actual["optimizer"]["state"].keys()
    for index, buffers in expected["optimizer"]["state"].items():
        assert torch.equal(actual["optimizer"]["state"][index]["momentum_buffer"], buffers["momentum_buffer"])
