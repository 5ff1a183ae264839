"""ViDT detector (Swin-nano with RAM, deformable decoder, VkD projectors, teacher) vs roymiles/VkD @ 6f8a507.

Fixtures in `fixtures/vidt_models/` were recorded by running the original with a pure-PyTorch stand-in for the CUDA
op (see its README); both sides use `vkd.vidt.testing.fill_detector` weights and 10 [DET] tokens.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from kdrepro_shared.errors import KdReproError
from vkd.vidt.arguments import get_args_parser
from vkd.vidt.methods import Detector, attach_projectors, build_distil_model, build_model, build_weight_dict
from vkd.vidt.methods.swin_w_ram import swin_nano
from vkd.vidt.testing import fill_detector
from vkd.vidt.util.misc import NestedTensor

FIXTURES = Path(__file__).parent / "fixtures" / "vidt_models"
REFINE = ["--aux_loss", "True", "--with_box_refine", "True"]
SMALL = ["--det_token_num", "10"]


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def parse(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(parents=[get_args_parser()])
    return parser.parse_args(["--method", "vidt", "--pre_trained", "none", "--device", "cpu", *extra])


def flatten_outputs(outputs: dict) -> dict[str, torch.Tensor]:
    """The recorder's flat naming of a detector output dict."""
    flat = {"pred_logits": outputs["pred_logits"], "pred_boxes": outputs["pred_boxes"]}
    for i, aux in enumerate(outputs.get("aux_outputs", [])):
        flat[f"aux_{i}_pred_logits"] = aux["pred_logits"]
        flat[f"aux_{i}_pred_boxes"] = aux["pred_boxes"]
    if "distil_tokens" in outputs:
        tokens = outputs["distil_tokens"]
        flat.update({f"patch_token_{i}": p for i, p in enumerate(tokens["patch_token"])})
        flat["body_det_token"] = tokens["body_det_token"]
        flat["neck_det_token"] = tokens["neck_det_token"]
    return flat


def assert_outputs(outputs: dict, expected: dict[str, torch.Tensor], prefix: str) -> None:
    flat = flatten_outputs(outputs)
    wanted = {k.removeprefix(prefix): v for k, v in expected.items() if k.startswith(prefix)}
    assert sorted(flat) == sorted(wanted)
    for key, value in wanted.items():
        torch.testing.assert_close(flat[key], value, rtol=1e-4, atol=1e-5, msg=key)


@pytest.fixture(scope="module")
def expected() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURES / "nano_outputs.pt")


@pytest.fixture(scope="module")
def samples(expected) -> NestedTensor:
    return NestedTensor(expected["tensors"], expected["mask"])


@pytest.fixture(scope="module")
def student() -> Detector:
    model, _, _ = build_model(parse("--backbone_name", "swin_nano", "--distil_model", "vidt_nano", *REFINE, *SMALL))
    return fill_detector(attach_projectors(model)).eval()


@pytest.mark.parity
def test_backbone_matches_original(student, samples, expected) -> None:
    with torch.no_grad():
        patch_outs, det_tgt, det_pos = student.backbone(samples.tensors, samples.mask)
    assert [tuple(p.shape) for p in patch_outs] == [(2, 96, 4, 6), (2, 192, 2, 3), (2, 384, 1, 2), (2, 256, 1, 1)]
    for i, p in enumerate(patch_outs):
        torch.testing.assert_close(p, expected[f"backbone_patch_{i}"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(det_tgt, expected["backbone_det_tgt"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(det_pos, expected["backbone_det_pos"])


@pytest.mark.parity
def test_student_outputs_and_projected_tokens_match_original(student, samples, expected) -> None:
    with torch.no_grad():
        outputs = student(samples)
    assert len(outputs["aux_outputs"]) == 6
    tokens = outputs["distil_tokens"]
    # rows are (batch, y, x) positions / (batch, token) / (level, batch, token), 256 channels each
    assert [tuple(p.shape) for p in tokens["patch_token"]] == [(48, 256), (12, 256), (4, 256), (2, 256)]
    assert tuple(tokens["body_det_token"].shape) == (20, 256)
    assert tuple(tokens["neck_det_token"].shape) == (140, 256)
    assert_outputs(outputs, expected, "student_")


@pytest.mark.parity
def test_teacher_returns_raw_tokens_matching_original(samples, expected) -> None:
    teacher = build_distil_model(parse("--backbone_name", "swin_nano", "--distil_model", "vidt_nano", *REFINE, *SMALL))
    assert not teacher.has_projections and teacher.distil
    fill_detector(teacher).eval()
    with torch.no_grad():
        outputs = teacher(samples)
    tokens = outputs["distil_tokens"]
    assert [tuple(p.shape) for p in tokens["patch_token"]] == [(2, 256, 4, 6), (2, 256, 2, 3), (2, 256, 1, 2),
                                                                (2, 256, 1, 1)]  # fmt: skip
    assert tuple(tokens["body_det_token"].shape) == (2, 10, 256)
    assert tuple(tokens["neck_det_token"].shape) == (7, 2, 10, 256)
    assert_outputs(outputs, expected, "teacher_nano_")


@pytest.mark.parity
def test_plain_detector_without_refinement_matches_original(samples, expected) -> None:
    model, _, _ = build_model(parse("--backbone_name", "swin_nano", *SMALL))
    assert model.transformer.decoder.bbox_embed is None
    fill_detector(model).eval()
    with torch.no_grad():
        outputs = model(samples)
    assert "aux_outputs" not in outputs and "distil_tokens" not in outputs
    assert_outputs(outputs, expected, "plain_")


@pytest.mark.parity
@pytest.mark.slow
def test_swin_base_teacher_matches_original(samples) -> None:
    teacher = build_distil_model(parse("--backbone_name", "swin_nano", "--distil_model", "vidt_base", *REFINE, *SMALL))
    assert sum(p.numel() for p in teacher.parameters()) == 99_959_635 - 90 * (128 + 256)  # 10, not 100, [DET] tokens
    fill_detector(teacher).eval()
    with torch.no_grad():
        outputs = teacher(samples)
    assert_outputs(outputs, torch.load(FIXTURES / "base_teacher_outputs.pt"), "")


def test_parameter_count_of_the_readme_student() -> None:
    model, _, _ = build_model(parse("--backbone_name", "swin_nano", *REFINE))
    assert sum(p.numel() for p in model.parameters()) == 15_728_677
    attach_projectors(model)
    assert sum(p.numel() for p in model.parameters()) == 16_124_965


def test_list_input_is_padded_and_gradients_reach_projectors(student, samples) -> None:
    student.train()
    try:
        images = [samples.tensors[0], samples.tensors[1, :, :, :32]]
        outputs = student(images)
        loss = outputs["pred_boxes"].sum() + sum(t.sum() for t in outputs["distil_tokens"]["patch_token"])
        loss.backward()
        assert student.patch_projector_1.projector.parametrizations.weight.original.grad is not None
        assert student.backbone.det_token.grad is not None
        assert outputs["pred_boxes"].shape == (2, 10, 4)
    finally:
        student.zero_grad(set_to_none=True)
        student.eval()


def test_weight_dict_has_aux_enc_and_distil_terms() -> None:
    weights = build_weight_dict(parse("--distil_model", "vidt_base", *REFINE))
    assert weights["loss_ce"] == 2 and weights["loss_bbox"] == 5 and weights["loss_giou"] == 2
    assert weights["loss_distil"] == 4.0 and weights["loss_distil_5"] == 4.0 and weights["loss_giou_enc"] == 2
    assert len(weights) == 4 * 8


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "vidt_wo_neck"], "valid: vidt"),
        (["--backbone_name", "coat_lite_tiny"], "swin_nano"),
        (["--distil_model", "vidt_huge"], "vidt_base"),
        (["--cross_scale_fusion", "True"], "cross_scale_fusion"),
        (["--dataset_file", "voc"], "coco"),
    ],
)
def test_unsupported_configurations_raise_one_line(extra, message) -> None:
    args = parse(*extra)
    with pytest.raises(KdReproError, match=message):
        if args.distil_model is not None:
            build_distil_model(args)
        else:
            build_model(args)


def test_pretrained_backbone_loads_model_entry_from_a_path(tmp_path) -> None:
    donor, _ = swin_nano()
    torch.save({"model": donor.state_dict()}, tmp_path / "swin.pth")
    model, hidden = swin_nano(pretrained=str(tmp_path / "swin.pth"))
    assert hidden == 384
    torch.testing.assert_close(model.patch_embed.proj.weight, donor.patch_embed.proj.weight)
    torch.save({"state_dict": {}}, tmp_path / "bad.pth")
    with pytest.raises(KdReproError, match="'model'"):
        swin_nano(pretrained=str(tmp_path / "bad.pth"))
