"""Released / trained student checkpoints: layout, strict loading as the eval scripts do, error messages (0cd5887)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kdrepro_shared.checkpoints import get_artifact, save
from kdrepro_shared.errors import CheckpointError, DownloadError
from whiten_mtd.models.distill_model import (
    RELEASED_STUDENTS,
    build_student,
    load_student_checkpoint,
    resolve_student_checkpoint,
)
from whiten_mtd.models.fake_weights import fake_state

FIXTURES = Path(__file__).parent / "fixtures" / "models"
KEYS = json.loads((FIXTURES / "keys.json").read_text())


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "outputs.npz") as data:
        return dict(data)


def released_layout(arch: str) -> dict:
    """A checkpoint as gld_distill saves it: the DDP student state (`module.base_encoder.*`) plus training state."""
    student = build_student(arch)
    state = {f"module.base_encoder.{k}": v for k, v in fake_state(student).items()}
    return {"epoch": 200, "state_dict": state, "optimizer": {}, "lr_scheduler": {}, "loss_fn": {}}


@pytest.mark.parity
@pytest.mark.parametrize("arch", ["resnet18", "resnet34"])
@pytest.mark.parametrize("p", [3.0, 1.0])
def test_released_layout_loads_like_the_eval_scripts(
    arch: str, p: float, tmp_path: Path, expected: dict[str, np.ndarray]
) -> None:
    path = save(tmp_path / f"{arch}_ep200", released_layout(arch), meta=False)
    student = load_student_checkpoint(path, arch, 512, p).eval()
    assert [[k, list(v.shape)] for k, v in student.state_dict().items()] == KEYS[f"student/{arch}"]
    with torch.no_grad():
        out = student(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    np.testing.assert_allclose(out.numpy(), expected[f"student/{arch}/p{p:g}"], rtol=1e-5, atol=1e-5)


def test_wrong_arch_is_one_line(tmp_path: Path) -> None:
    path = save(tmp_path / "r18", released_layout("resnet18"), meta=False)
    with pytest.raises(CheckpointError, match="does not fit a resnet34 student") as err:
        load_student_checkpoint(path, "resnet34")
    assert "\n" not in str(err.value)


def test_checkpoint_without_student(tmp_path: Path) -> None:
    path = save(tmp_path / "teacher_only", {"state_dict": {"module.teacher_encoders.x": torch.zeros(1)}}, meta=False)
    with pytest.raises(CheckpointError, match="holds no student weights"):
        load_student_checkpoint(path, "resnet18")
    path = save(tmp_path / "bare", {"model": {}}, meta=False)
    with pytest.raises(CheckpointError, match="has no 'state_dict' entry"):
        load_student_checkpoint(path, "resnet18")


def test_released_students_are_registered() -> None:
    names = [n.split("/", 1)[1] for n in RELEASED_STUDENTS]
    assert names == [
        "rg_rag_rs_to_r18_ep200",
        "rg_rag_rs_to_r34_ep200",
        "ro_re_to_r18_ep3k",
        "ro_re_to_r34_ep3k",
        "mc_bt_to_r18_ep3k",
        "mc_bt_to_r34_ep3k",
    ]
    for name in RELEASED_STUDENTS:
        assert get_artifact(name).expected_keys == ("epoch", "state_dict", "optimizer", "lr_scheduler", "loss_fn")


def test_released_student_by_name_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KDREPRO_OFFLINE", "1")
    monkeypatch.setenv("KDREPRO_HOME", str(tmp_path))
    with pytest.raises(DownloadError, match="ro_re_to_r18_ep3k") as err:
        resolve_student_checkpoint("ro_re_to_r18_ep3k")
    assert "\n" not in str(err.value)
    cached = tmp_path / "checkpoints" / "whiten_mtd" / "ro_re_to_r18_ep3k" / "ro_re_to_r18_ep3k"
    save(cached, released_layout("resnet18"), meta=False)
    assert resolve_student_checkpoint("whiten_mtd/ro_re_to_r18_ep3k") == cached
    assert load_student_checkpoint("ro_re_to_r18_ep3k", "resnet18").fc.weight.shape == (512, 512)


def test_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"not found .*mc_bt_to_r34_ep3k"):
        resolve_student_checkpoint(tmp_path / "nope.pt")
