"""SetCriterion (focal, L1, GIoU, cardinality, IoU-aware, token-label, VkD distillation) vs the original's values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kdrepro_shared.errors import KdReproError
from vkd.vidt.arguments import get_args_parser
from vkd.vidt.methods.vidt.criterion import SetCriterion, distillation_loss, standardise
from vkd.vidt.methods.vidt.matcher import build_matcher

FIXTURE = Path(__file__).parent / "fixtures" / "vidt_losses" / "criterion.pt"
BASE = ["labels", "boxes", "cardinality"]


@pytest.fixture(scope="module")
def recorded() -> dict:
    return torch.load(FIXTURE, weights_only=False)


def criterion(recorded: dict, losses: list[str]) -> SetCriterion:
    return SetCriterion(91, build_matcher(get_args_parser().parse_args([])), recorded["weight_dict"], losses)


def with_grad(tensors: dict) -> dict:
    return {
        k: v.clone().requires_grad_(True) if torch.is_tensor(v) and v.is_floating_point() else v
        for k, v in tensors.items()
    }


def assert_losses_equal(ours: dict, theirs: dict) -> None:
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert torch.allclose(ours[key].detach(), value, rtol=1e-5, atol=1e-5), key


@pytest.mark.parity
def test_every_loss_term_and_gradient_matches_original(recorded: dict) -> None:
    inputs = recorded["inputs"]
    outputs = with_grad({k: v for k, v in inputs["outputs"].items() if k != "aux_outputs"})
    outputs["aux_outputs"] = [with_grad(aux) for aux in inputs["outputs"]["aux_outputs"]]
    tokens = inputs["student_tokens"]
    student = {
        "patch_token": [p.clone().requires_grad_(True) for p in tokens["patch_token"]],
        "body_det_token": tokens["body_det_token"].clone().requires_grad_(True),
        "neck_det_token": tokens["neck_det_token"].clone().requires_grad_(True),
    }
    crit = criterion(recorded, BASE)
    losses = crit(outputs, inputs["targets"], distil_tokens=(student, inputs["teacher_tokens"]))
    assert_losses_equal(losses, recorded["losses"])
    total = sum(losses[k] * crit.weight_dict[k] for k in losses if k in crit.weight_dict)
    assert torch.allclose(total.detach(), recorded["total"], rtol=1e-6)
    total.backward()
    grads = recorded["grads"]
    assert torch.allclose(outputs["pred_logits"].grad, grads["pred_logits"], atol=1e-6)
    assert torch.allclose(outputs["pred_boxes"].grad, grads["pred_boxes"], atol=1e-5)
    assert torch.allclose(outputs["aux_outputs"][0]["pred_boxes"].grad, grads["aux0_pred_boxes"], atol=1e-5)
    assert torch.allclose(student["patch_token"][0].grad, grads["patch_token_0"], atol=1e-7)
    assert torch.allclose(student["neck_det_token"].grad, grads["neck_det_token"], atol=1e-7)


@pytest.mark.parity
def test_iou_aware_and_token_label_terms_match_original(recorded: dict) -> None:
    inputs = recorded["inputs"]
    outputs = dict(inputs["outputs"], enc_tokens=inputs["enc_tokens"])
    targets = [dict(t, masks=t["masks"].clone()) for t in inputs["targets"]]
    losses = criterion(recorded, [*BASE, "iouaware"])(outputs, targets)
    assert_losses_equal(losses, recorded["losses_extra"])


def test_weight_dict_of_the_readme_recipe(recorded: dict) -> None:
    weights = recorded["weight_dict"]
    assert weights["loss_distil"] == 4.0 and weights["loss_ce_5"] == 2 and weights["loss_bbox_enc"] == 5
    assert len(weights) == 4 * 8


def test_distillation_ignores_projector_scale_and_bias() -> None:
    g = torch.Generator().manual_seed(1)
    teacher = {
        "patch_token": [torch.randn(2, 8, 3, 2, generator=g)],
        "body_det_token": torch.randn(2, 5, 8, generator=g),
        "neck_det_token": torch.randn(3, 2, 5, 8, generator=g),
    }
    student = {
        "patch_token": [torch.randn(12, 8, generator=g)],
        "body_det_token": torch.randn(10, 8, generator=g),
        "neck_det_token": torch.randn(30, 8, generator=g),
    }
    scale, shift = torch.rand(8, generator=g) + 0.5, torch.randn(8, generator=g)
    affine = {
        k: [v * scale + shift for v in vs] if isinstance(vs, list) else vs * scale + shift for k, vs in student.items()
    }
    assert torch.allclose(distillation_loss(student, teacher), distillation_loss(affine, teacher), atol=1e-5)
    assert torch.allclose(standardise(student["body_det_token"]).std(0), torch.ones(8), atol=1e-5)


def test_unknown_loss_name_is_refused() -> None:
    with pytest.raises(KdReproError, match="masks"):
        SetCriterion(91, build_matcher(get_args_parser().parse_args([])), {}, ["masks"])
