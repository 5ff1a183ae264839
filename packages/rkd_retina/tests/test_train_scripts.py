"""Entry scripts train_base / train_LK / train_Swin: checkpoints per epoch, TensorBoard, resume, one-line errors."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from rkd_retina import train_base, train_LK, train_Swin
from rkd_retina.dataset.fake_data import write_fake_our_data
from rkd_retina.model.superRetina import SuperRetina

PACKAGE = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_fake_our_data(root, size=96)
    return root


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(path: Path, data_root: Path, **model: object) -> Path:
    """The shipped train.yaml at 64², 2 epochs, CPU, no workers, checkpoints under `path`'s folder."""
    config = yaml.safe_load((PACKAGE / "config" / "train.yaml").read_text())
    config["MODEL"].update(device="cpu", num_epoch=2, num_workers=0, detect_anomaly=False)
    config["MODEL"]["model_save_path"] = str(path.parent / "ck" / "Model.pth")
    config["MODEL"].update(model)
    config["DATASET"].update(
        model_image_width=64,
        model_image_height=64,
        dataset_path=str(data_root / "Our_data"),
        auxiliary=str(data_root / "Auxilliary_Training"),
    )
    path.write_text(yaml.safe_dump(config))
    return path


def test_two_epochs_write_checkpoints_and_resume(data_root: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "train.yaml", data_root)
    train_base.main(["--config", str(config)])
    prefix = tmp_path / "ck" / "Model.pth"
    assert sorted(p.name for p in prefix.parent.glob("Model.pth_*")) == ["Model.pth_0", "Model.pth_1"]
    last = torch.load(f"{prefix}_1", weights_only=True)
    assert set(last) == {"net", "optimizer", "epoch"} and last["epoch"] == 1
    SuperRetina().load_state_dict(last["net"])
    assert any((prefix.parent / "logs").glob("events.out.tfevents.*"))
    steps = last["optimizer"]["state"][0]["step"].item()
    assert 4 <= steps <= 6  # batches with a gradient: the 2 labelled ones per epoch, the auxiliary one may add

    weights_only = write_config(
        tmp_path / "load.yaml", data_root, num_epoch=0, load_pre_trained_model=True, pretrained_path=f"{prefix}_1"
    )
    model = train_base.main(["--config", str(weights_only)])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, last["net"][key], rtol=0, atol=0)

    resume = write_config(
        tmp_path / "resume.yaml",
        data_root,
        num_epoch=3,
        load_pre_trained_model=True,
        pretrained_path=f"{prefix}_1",
        resume_training_state=True,
        model_save_path=str(tmp_path / "resumed" / "Model.pth"),
    )
    train_base.main(["--config", str(resume)])
    resumed = torch.load(tmp_path / "resumed" / "Model.pth_2", weights_only=True)
    assert resumed["epoch"] == 2 and steps + 2 <= resumed["optimizer"]["state"][0]["step"].item() <= steps + 3
    assert [p.name for p in (tmp_path / "resumed").glob("Model.pth_*")] == ["Model.pth_2"]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"load_pre_trained_model": True, "pretrained_path": "./save/"}, "is a directory"),
        ({"load_pre_trained_model": True, "pretrained_path": "nowhere.pth"}, "nowhere.pth does not exist"),
    ],
)
def test_pretrained_path_errors_are_one_line(model: dict, message: str, data_root: Path, workdir: Path, capsys) -> None:
    (workdir / "save").mkdir()
    config = write_config(workdir / "train.yaml", data_root, **model)
    with pytest.raises(SystemExit):
        train_base.main(["--config", str(config)])
    err = capsys.readouterr().err
    assert message in err and "MODEL.pretrained_path" in err and err.count("\n") == 1


def test_config_and_teacher_errors_are_one_line(data_root: Path, workdir: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        train_LK.main([])
    assert "Config File doesn't Exist: config/train.yaml" in capsys.readouterr().err
    partial = workdir / "partial.yaml"
    partial.write_text(yaml.safe_dump({"MODEL": {}, "PKE": {}}))
    with pytest.raises(SystemExit):
        train_LK.main(["--config", str(partial)])
    assert "lacks section(s) DATASET, VALUE_MAP" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_Swin.main(["--config", str(write_config(workdir / "swin.yaml", data_root))])
    err = capsys.readouterr().err
    assert "save/SuperRetina.pth not found" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("shim", "module"),
    [
        ("train_base", train_base),
        ("train_LK", train_LK),
        ("train_Swin", train_Swin),
        ("train_lk", train_LK),
        ("train_swin", train_Swin),
    ],
)
def test_root_shims_run_the_package_entry(shim: str, module: object) -> None:
    spec = importlib.util.spec_from_file_location(f"shim_{shim}", PACKAGE / f"{shim}.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    assert loaded.main is module.main
