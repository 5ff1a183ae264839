"""DeiT students, projector and released-checkpoint loading vs fixtures recorded from roymiles/VkD @ 6f8a507."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from torch import nn

from kdrepro_shared.errors import CheckpointError
from vkd.models import (
    DEIT_MODELS,
    MODELS,
    DistilledVisionTransformer,
    attach_projector,
    build_projector,
    load_student_checkpoint,
)
from vkd.testing import fill_deterministic

FIXTURES = Path(__file__).parent / "fixtures" / "models"
KEYS = json.loads((FIXTURES / "keys.json").read_text())


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def filled_student(projector: bool = True) -> DistilledVisionTransformer:
    student = MODELS["deit_ti_distilled"](num_classes=1000, img_size=224)
    if projector:
        attach_projector(student, 368)
    return fill_deterministic(student)


def sample_input() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def assert_close(actual: torch.Tensor, expected: np.ndarray) -> None:
    torch.testing.assert_close(actual.detach(), torch.from_numpy(expected), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "deit_ti.npz") as data:
        return dict(data)


@pytest.mark.parametrize("name", list(DEIT_MODELS))
def test_state_dict_keys_and_shapes(name: str) -> None:
    with torch.device("meta"):
        model = DEIT_MODELS[name](num_classes=1000, img_size=224, weight_init="skip")
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == KEYS[name]


def test_projector_keys_and_orthogonality() -> None:
    projector = build_projector(192, 368)
    assert [[f"projector.{k}", list(v.shape)] for k, v in projector.state_dict().items()] == KEYS[
        "deit_ti_distilled+regnety_002"
    ]
    assert [n for n, _ in projector.named_parameters()] == ["parametrizations.weight.original"]
    weight = projector.weight.detach()
    torch.testing.assert_close(weight.T @ weight, torch.eye(192), atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "dim"), [("deit_ti_distilled+regnety_160", 192), ("deit_s_distilled+regnety_160", 384)]
)
def test_real_projector_keys(name: str, dim: int) -> None:
    projector = build_projector(dim, 3024)
    assert [[f"projector.{k}", list(v.shape)] for k, v in projector.state_dict().items()] == KEYS[name]


def test_parameter_counts_and_timm_registry() -> None:
    with torch.device("meta"):
        student = timm.create_model("deit_tiny_distilled_patch16_224", num_classes=1000, weight_init="skip")
        assert isinstance(student, DistilledVisionTransformer)
        assert sum(p.numel() for p in student.parameters()) == 6_633_104
        attach_projector(student, 3024)
        assert sum(p.numel() for p in student.parameters()) == 7_213_712
    assert set(MODELS) == {*DEIT_MODELS, "regnety_160"}


def test_deit_ti_outputs_match_original(expected: dict[str, np.ndarray]) -> None:
    student = filled_student()
    x = sample_input()
    with torch.no_grad():
        student.eval()
        assert_close(student(x), expected["eval_logits"])
        cls, dist, patch = student.forward_features(x)
        assert patch.shape == (2, 196, 192)
        assert_close(cls, expected["eval_cls"])
        assert_close(dist, expected["eval_dist"])
        assert_close(patch.mean(1), expected["eval_patch_mean"])
        assert_close(patch[:, ::40], expected["eval_patch_sample"])
        assert_close(student.projector(patch.mean(1)), expected["projected"])
        student.train()
        logits, logits_dist = student(x)
        assert_close(logits, expected["train_logits"])
        assert_close(logits_dist, expected["train_logits_dist"])
        assert_close(student.conv_embed.conv[1].running_mean, expected["train_bn_running_mean"])


def released_checkpoint(student: nn.Module) -> dict:
    """A checkpoint laid out as the original's `save_checkpoint` writes it (DDP `module.` keys, projector inside)."""
    return {
        "student": {f"module.{k}": v for k, v in student.state_dict().items()},
        "student_ema": None,
        "optimizer": {},
        "scaler": {},
        "epoch": 299,
        "loss": 1.0,
        "batch_size": 512,
        "world_size": 1,
        "lr": 5e-6,
    }


def test_load_released_checkpoint(tmp_path: Path, expected: dict[str, np.ndarray]) -> None:
    checkpoint = released_checkpoint(filled_student())
    assert "module.projector.parametrizations.weight.0.base" in checkpoint["student"]
    path = tmp_path / "latest.pth.tar"
    torch.save(checkpoint, path)

    evaluated = MODELS["deit_ti_distilled"](num_classes=1000, img_size=224)
    report = load_student_checkpoint(evaluated, path)
    assert report.ok
    assert report.dropped_projector == (
        "projector.parametrizations.weight.original",
        "projector.parametrizations.weight.0.base",
    )
    with torch.no_grad():
        assert_close(evaluated.eval()(sample_input()), expected["eval_logits"])

    resumed = MODELS["deit_ti_distilled"](num_classes=1000, img_size=224)
    attach_projector(resumed, 368)
    report = load_student_checkpoint(resumed, {"model": checkpoint})
    assert report.ok
    assert report.dropped_projector == ()
    torch.testing.assert_close(resumed.projector.weight, filled_student().projector.weight, rtol=0, atol=0)


def test_load_reports_mismatched_keys() -> None:
    checkpoint = released_checkpoint(filled_student(projector=False))
    del checkpoint["student"]["module.head_dist.bias"]
    checkpoint["student"]["module.dist_token"] = torch.zeros(1, 1, 192)
    model = MODELS["deit_ti_distilled"](num_classes=1000, img_size=224)
    with pytest.raises(CheckpointError, match=r"1 missing \[head_dist.bias\], 1 unexpected \[dist_token\]"):
        load_student_checkpoint(model, checkpoint)
    report = load_student_checkpoint(model, checkpoint, strict=False)
    assert (report.missing, report.unexpected, report.ok) == (("head_dist.bias",), ("dist_token",), False)
