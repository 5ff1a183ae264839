"""Predictor wired to the model registry: FIRE end-to-end from a saved checkpoint, Swin without ./save, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from kdrepro_shared.errors import CheckpointError
from rkd_retina import test_on_FIRE
from rkd_retina.dataset.fire import write_fake_fire
from rkd_retina.model.super_retina import SuperRetinaTeacher
from rkd_retina.model.superRetina import SuperRetina
from rkd_retina.predictor import Predictor, load_predict_model
from rkd_retina.testing import fill_deterministic

FETCH = "python -m kdrepro_shared.checkpoints fetch rkd_retina/models_zip"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def predict_config(checkpoint: Path | str, model_name: str, size: int = 32) -> dict:
    return {
        "PREDICT": {
            "device": "cpu",
            "knn_thresh": 0.9,
            "model_image_height": size,
            "model_image_width": size,
            "model_save_path": str(checkpoint),
            "nms_size": 10,
            "nms_thresh": 0.01,
            "use_matching_trick": True,
            "model_name": model_name,
        }
    }


def save_checkpoint(model: torch.nn.Module, path: Path) -> Path:
    torch.save({"net": model.state_dict(), "optimizer": {}, "epoch": 0}, path)
    return path


def test_fire_end_to_end_from_superretina_checkpoint(tmp_path: Path, capsys) -> None:
    checkpoint = save_checkpoint(fill_deterministic(SuperRetina()), tmp_path / "SuperRetina.pth")
    config = tmp_path / "test.yaml"
    config.write_text(yaml.safe_dump(predict_config(checkpoint, "SuperRetina")))
    write_fake_fire(tmp_path, size=64)
    record = test_on_FIRE.main(["--config", str(config), "--data-path", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert str(checkpoint) in lines and record.image_num == 133
    # Untrained (deterministic) weights at 32² register no pair, as random weights failed ~90% in the original.
    assert "Failed:100.00%, Inaccurate:0.00%, Acceptable:0.00%" in lines
    assert "S: 0.000, P: 0.000, A: 0.000, mAUC: 0.000" in lines
    assert record.summary_lines()[1] in lines and record.summary_lines()[3] in lines


def test_swin_checkpoint_loads_without_save_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rkd_retina.model.super_retina_model_change import SuperRetina as Swin

    teacher = tmp_path / "teacher.pth"
    torch.save({"net": SuperRetinaTeacher().state_dict()}, teacher)
    source = fill_deterministic(Swin(device="cpu", teacher_path=teacher)).eval()
    checkpoint = save_checkpoint(source, tmp_path / "SwinEncoder.pth")
    monkeypatch.chdir(tmp_path)  # no ./save/SuperRetina.pth here
    model = load_predict_model("Swin", checkpoint, torch.device("cpu")).eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        for got, want in zip(model(x), source(x), strict=True):
            torch.testing.assert_close(got, want)


def test_missing_checkpoint_names_file_and_fetch_command(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "save" / "SwinEncoder.pth"
    with pytest.raises(CheckpointError) as info:
        Predictor(predict_config(missing, "Swin"))
    message = str(info.value)
    assert "PREDICT.model_save_path" in message and str(missing) in message and FETCH in message
    assert "\n" not in message
    config = tmp_path / "test.yaml"
    config.write_text(yaml.safe_dump(predict_config(missing, "Swin")))
    write_fake_fire(tmp_path, size=32)
    with pytest.raises(SystemExit):
        test_on_FIRE.main(["--config", str(config), "--data-path", str(tmp_path)])
    err = capsys.readouterr().err
    assert FETCH in err and err.count("\n") == 1


def test_checkpoint_of_another_model_is_one_line(tmp_path: Path) -> None:
    checkpoint = save_checkpoint(SuperRetina(), tmp_path / "SuperRetina.pth")
    with pytest.raises(CheckpointError, match=r"does not fit rkd_retina\.model\.LKUNET\.SuperRetina") as info:
        load_predict_model("LKUNet", checkpoint, torch.device("cpu"))
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="is a directory"):
        load_predict_model("SuperRetina", tmp_path, torch.device("cpu"))
