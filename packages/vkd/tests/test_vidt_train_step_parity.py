"""One VkD distillation step (Swin-nano student + projectors, ViDT-nano teacher) vs the original's recorded step.

The recorder ran the original `engine.train_one_epoch_with_teacher` on one fixed batch with deterministic weights
(`vkd.vidt.testing.fill_detector` on both models), the original's 3-group AdamW and gradient clipping 0.1; see
fixtures/vidt_train_step/README.md.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from vkd.vidt.engine import train_one_epoch_with_teacher
from vkd.vidt.main import build_optimizer, get_main_parser
from vkd.vidt.methods import attach_projectors, build_distil_model, build_model
from vkd.vidt.testing import fill_detector
from vkd.vidt.util.misc import NestedTensor

FIXTURES = Path(__file__).parent / "fixtures" / "vidt_train_step"


def run_step(recorded: dict) -> tuple[dict, dict]:
    args = get_main_parser().parse_args(recorded["argv"])
    args.dim_feedforward = 1024
    torch.manual_seed(0)
    model, criterion, _ = build_model(args)
    fill_detector(attach_projectors(model))
    teacher = fill_detector(build_distil_model(args))
    optimizer = build_optimizer(model, args)
    assert [len(g["params"]) for g in optimizer.param_groups] == recorded["n_groups"]
    batch = [(NestedTensor(recorded["samples"], recorded["mask"]), recorded["targets"])]
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    stats = train_one_epoch_with_teacher(
        model, teacher, criterion, batch, optimizer, torch.device("cpu"), 0, args.clip_max_norm, print_freq=1
    )
    return stats, model.state_dict()


def check(recorded: dict, stats: dict, state: dict) -> None:
    assert set(recorded["stats"]) <= set(stats)
    assert sum(recorded["changed"].values()) >= len(recorded["changed"]) - 1  # the step did move the weights
    for key, value in recorded["stats"].items():
        assert stats[key] == pytest.approx(value, rel=2e-5, abs=1e-5), key
    for name, value in recorded["after"].items():
        mine = state[name] if state[name].numel() <= 4096 else state[name].flatten()[:4096]
        assert torch.allclose(mine, value, atol=2e-6, rtol=1e-4), name


@pytest.mark.parity
@pytest.mark.timeout(900)
def test_distillation_step_matches_original_without_dropout() -> None:
    recorded = torch.load(FIXTURES / "step_dropout0.pt", weights_only=False)
    check(recorded, *run_step(recorded))


@pytest.mark.parity
@pytest.mark.timeout(900)
def test_distillation_step_matches_original_with_decoder_dropout() -> None:
    recorded = torch.load(FIXTURES / "step_dropout01.pt", weights_only=False)
    check(recorded, *run_step(recorded))


def test_optimizer_groups_follow_the_original_rule() -> None:
    args = argparse.Namespace(lr=1e-4, weight_decay=1e-4)
    model = torch.nn.Module()
    model.backbone = torch.nn.Module()
    model.backbone.no_weight_decay = lambda: {"det_token"}
    model.backbone.det_token = torch.nn.Parameter(torch.zeros(1, 3, 4))
    model.backbone.proj = torch.nn.Linear(4, 4)
    model.head = torch.nn.Linear(4, 2)
    groups = build_optimizer(model, args).param_groups
    assert [len(g["params"]) for g in groups] == [2, 2, 1]
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0, 1e-4] and {g["lr"] for g in groups} == {1e-4}
