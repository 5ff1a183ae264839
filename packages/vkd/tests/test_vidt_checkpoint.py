"""Released ViDT / VkD checkpoint layout: 509 student keys (incl. the duplicated box heads and 24 projector keys),
the Swin-base teacher's keys, and checkpoint files whose `args` is a pickled argparse.Namespace."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from kdrepro_shared import checkpoints
from kdrepro_shared.errors import CheckpointError
from vkd.testing import fill_value
from vkd.vidt.arguments import get_args_parser
from vkd.vidt.methods import (
    attach_projectors,
    build_distil_model,
    build_model,
    load_detector_state,
    load_teacher_checkpoint,
    read_checkpoint,
)

FIXTURES = Path(__file__).parent / "fixtures" / "vidt_models"
KEYS = json.loads((FIXTURES / "keys.json").read_text())
REFINE = ["--aux_loss", "True", "--with_box_refine", "True"]


def parse(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(parents=[get_args_parser()])
    return parser.parse_args(["--method", "vidt", "--pre_trained", "none", "--device", "cpu", *extra])


def layout(model: torch.nn.Module) -> list[list]:
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()]


def released_state(entries: list[list]) -> dict[str, torch.Tensor]:
    """A state_dict in the released key layout, made only from the recorded key/shape/dtype list."""
    state = {}
    for key, shape, dtype in entries:
        if dtype == "int64":
            state[key] = torch.zeros(shape, dtype=torch.int64)
        else:
            state[key] = fill_value(key, tuple(shape))
    return state


@pytest.fixture(scope="module")
def student() -> torch.nn.Module:
    model, _, _ = build_model(parse("--backbone_name", "swin_nano", "--distil_model", "vidt_base", *REFINE))
    return attach_projectors(model)


@pytest.mark.parity
def test_student_layout_is_the_released_one(student) -> None:
    assert layout(student) == KEYS["swin_nano_student"]
    keys = [k for k, _, _ in KEYS["swin_nano_student"]]
    assert len(keys) == 509
    assert sum(k.startswith("transformer.decoder.bbox_embed.") for k in keys) == 42
    assert sum("projector" in k for k in keys) == 24


@pytest.mark.parity
def test_plain_layout_matches_original() -> None:
    model, _, _ = build_model(parse("--backbone_name", "swin_nano"))
    assert layout(model) == KEYS["swin_nano_plain"]


def test_released_state_loads_strictly_and_sets_shared_box_heads(student) -> None:
    state = released_state(KEYS["swin_nano_student"])
    report = load_detector_state(student, state)
    assert report.ok
    # the decoder's refinement heads are the detector's box heads: one tensor under two keys
    assert student.transformer.decoder.bbox_embed[3].layers[0].weight is student.bbox_embed[3].layers[0].weight
    torch.testing.assert_close(student.bbox_embed[3].layers[0].weight, state["bbox_embed.3.layers.0.weight"])


def test_vkd_checkpoint_with_namespace_loads(tmp_path, student) -> None:
    args = parse("--backbone_name", "swin_nano", "--distil_model", "vidt_base", *REFINE)
    path = tmp_path / "checkpoint.pth"
    state = released_state(KEYS["swin_nano_student"])
    torch.save({"model": state, "optimizer": {}, "lr_scheduler": {}, "epoch": 3, "args": args}, path)
    with pytest.raises(CheckpointError, match="Namespace"):
        checkpoints.load(path)  # weights_only: the Namespace needs the trusted-legacy load
    checkpoint = read_checkpoint(path)
    assert isinstance(checkpoint["args"], argparse.Namespace) and checkpoint["args"].backbone_name == "swin_nano"
    assert load_detector_state(student, checkpoint["model"]).ok


def test_student_checkpoint_into_a_model_without_projectors_names_the_keys() -> None:
    model, _, _ = build_model(parse("--backbone_name", "swin_nano", *REFINE))
    with pytest.raises(CheckpointError, match=r"24 unexpected.*projector"):
        load_detector_state(model, released_state(KEYS["swin_nano_student"]))
    report = load_detector_state(model, released_state(KEYS["swin_nano_student"]), strict=False)
    assert not report.missing and len(report.unexpected) == 24


def test_teacher_checkpoint_loads_strictly(tmp_path) -> None:
    args = parse("--backbone_name", "swin_nano", "--distil_model", "vidt_nano", *REFINE)
    donor = build_distil_model(args)
    path = tmp_path / "vidt_nano_50.pth"
    torch.save({"model": donor.state_dict(), "args": args}, path)
    teacher = build_distil_model(args)
    assert load_teacher_checkpoint(teacher, path).ok
    torch.testing.assert_close(teacher.backbone.det_token, donor.backbone.det_token)
    plain = build_distil_model(parse("--backbone_name", "swin_nano", "--distil_model", "vidt_nano"))
    with pytest.raises(CheckpointError, match="with_box_refine"):
        load_teacher_checkpoint(plain, path)


def test_missing_or_malformed_checkpoint_is_one_line(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not an existing file"):
        read_checkpoint(tmp_path / "nope.pth")
    torch.save({"state_dict": {}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no 'model' entry"):
        read_checkpoint(tmp_path / "other.pth")


@pytest.mark.parity
@pytest.mark.slow
def test_swin_base_teacher_layout_is_the_released_one() -> None:
    teacher = build_distil_model(parse("--backbone_name", "swin_nano", "--distil_model", "vidt_base", *REFINE))
    assert layout(teacher) == KEYS["vidt_base_teacher"]
    assert load_detector_state(teacher, released_state(KEYS["vidt_base_teacher"])).ok
