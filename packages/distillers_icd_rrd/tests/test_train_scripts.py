"""Entry scripts: flags and derived names vs the spec, short real runs, --resume, and the one-line errors.

Runs use a 100-image fake CIFAR-100 and a random resnet8 teacher; each real run is one or two epochs on CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from distillers_icd_rrd import train_student, train_teacher, transfer_student
from distillers_icd_rrd.models import model_dict
from kdrepro_shared.data import write_fake_cifar

TEACHER = "save/models/resnet8_vanilla/ckpt_epoch_240.pth"
FAST = ["--epochs", "1", "--num_workers", "0", "--batch_size", "16", "--print_freq", "1000"]


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """One intra-op thread: these tiny CPU runs are faster without OpenMP contention on a small, busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CWD with a tiny fake CIFAR-100 in ./data and a random resnet8 teacher in ./save/models/resnet8_vanilla."""
    monkeypatch.chdir(tmp_path)
    write_fake_cifar(tmp_path / "data", 100, n_train=100, n_test=20)
    torch.manual_seed(0)
    teacher = model_dict["resnet8"](num_classes=100)
    (tmp_path / TEACHER).parent.mkdir(parents=True)
    torch.save({"epoch": 240, "model": teacher.state_dict(), "accuracy": torch.tensor([70.0])}, tmp_path / TEACHER)
    return tmp_path


def test_student_defaults_and_derived_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    opt = train_student.parse_option(
        ["--path_t", "./save/models/resnet32x4_vanilla/ckpt_epoch_240.pth", "-a", "0", "-b", "1"]
    )
    expected = {
        "print_freq": 100, "tb_freq": 500, "save_freq": 40, "batch_size": 64, "num_workers": 8, "epochs": 240,
        "init_epochs": 30, "learning_rate": 0.05, "lr_decay_epochs": [150, 180, 210], "lr_decay_rate": 0.1,
        "weight_decay": 5e-4, "momentum": 0.9, "dataset": "cifar100", "model_s": "resnet8", "distill": "kd",
        "trial": "1", "gamma": 1, "alpha": 0.0, "beta": 1.0, "kd_T": 4, "feat_dim": 128, "nce_k": 16384,
        "nce_t_s": 0.04, "nce_t_t": 0.1, "nce_t": 0.07, "nce_m": 0.5, "mode": "exact", "hint_layer": 2,
        "resume": False, "model_t": "resnet32x4",
        "model_path": "./save/student/student_model", "tb_path": "./save/student/student_tensorboards",
        "model_name": "KD_cifar100_S_resnet8_T_resnet32x4_r_1_a_0.0_b_1.0_trial_1",
    }  # fmt: skip
    assert {k: getattr(opt, k) for k in expected} == expected
    assert opt.save_folder == "./save/student/student_model/" + expected["model_name"]
    assert Path(opt.save_folder).is_dir() and Path(opt.tb_folder).is_dir()
    assert opt.tb_folder == "./save/student/student_tensorboards/" + expected["model_name"]


def test_student_name_parsing_and_forced_lr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["--path_t", "save/models/wrn_40_2_vanilla/x.pth", "--distill", "icd", "--model_s", "ShuffleV1"]
    opt = train_student.parse_option([*argv, "-a", "1", "-b", "1", "--learning_rate", "0.2", "--lr_decay_epochs", "30"])
    assert opt.model_t == "wrn_40_2" and opt.learning_rate == 0.01 and opt.lr_decay_epochs == [30]
    assert opt.model_name == "ICD_cifar100_S_ShuffleV1_T_wrn_40_2_r_1_a_1.0_b_1.0_trial_1"
    assert train_student.parse_option(["--path_t", "a/ResNet50_x/c.pth", "-a", "0", "-b", "0"]).model_t == "ResNet50"


def test_teacher_defaults_and_derived_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    opt = train_teacher.parse_option([])
    expected = {
        "print_freq": 100, "tb_freq": 500, "save_freq": 40, "batch_size": 64, "num_workers": 8, "epochs": 240,
        "learning_rate": 0.05, "lr_decay_epochs": [150, 180, 210], "lr_decay_rate": 0.1, "weight_decay": 5e-4,
        "momentum": 0.9, "model": "resnet8", "dataset": "cifar100", "trial": 0, "resume": False,
        "model_path": "./save/teacher/models", "tb_path": "./save/teacher/tensorboard",
        "model_name": "cifar100_resnet8_trial_0",
    }  # fmt: skip
    assert {k: getattr(opt, k) for k in expected} == expected
    assert train_teacher.parse_option(["--model", "MobileNetV2", "-t", "3"]).learning_rate == 0.01


def test_transfer_keeps_the_seed_student_override_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    opt = transfer_student.parse_option(["--model_s", "resnet20", "--path_s", "x/resnet20_last.pth"])
    assert (opt.model_s, opt.path_s) == ("wrn_16_2", "./save//wrn_16_2_last.pth")
    assert (opt.epochs, opt.save_freq, opt.dataset, opt.trial) == (100, 50, "stl10", 0)
    assert opt.model_name == "wrn_16_2_stl10_lr_0.05_decay_0.0005_trial_0"
    opt = transfer_student.parse_option(["--use_cli_student", "--model_s", "resnet20", "--path_s", "x/r.pth"])
    assert (opt.model_s, opt.path_s) == ("resnet20", "x/r.pth")


def _one_line_error(capsys: pytest.CaptureFixture[str], main: Callable[[list[str]], None], argv: list[str]) -> str:
    """Run `main(argv)`, expect exit 2 and return its single stderr line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_bad_input_is_one_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(capsys, train_student.main, ["--path_t", TEACHER])
    assert "-a/--alpha and -b/--beta are required" in err
    err = _one_line_error(
        capsys, train_student.main, ["--path_t", "save/cifar100_resnet8_trial_0/r.pth", "-a", "0", "-b", "1"]
    )
    assert "'cifar100_resnet8_trial_0'" in err and "resnet32x4" in err
    wrong = workdir / "save/models/resnet20_vanilla/ckpt_epoch_240.pth"
    wrong.parent.mkdir(parents=True)
    wrong.write_bytes((workdir / TEACHER).read_bytes())
    err = _one_line_error(capsys, train_student.main, ["--path_t", str(wrong), "-a", "0", "-b", "1", *FAST])
    assert "does not fit resnet20" in err and "missing keys layer1.1.conv1.weight" in err
    with pytest.raises(SystemExit) as exit_info:
        train_student.main(["--path_t", TEACHER, "--distill", "rcd"])
    assert exit_info.value.code == 2 and "invalid choice: 'rcd'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_teacher.main(["--model", "resnet9"])
    assert "resnet8x4" in capsys.readouterr().err
    err = _one_line_error(capsys, train_teacher.main, ["--dataset", "cifar10", *FAST])
    assert "cifar-10-batches-py" in err


def _model(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["model"]


def test_teacher_run_writes_the_seed_checkpoints_and_resumes_bit_identically(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--epochs", "2", "--num_workers", "0", "--batch_size", "32", "--save_freq", "1"]
    torch.manual_seed(1)
    train_teacher.main(argv)
    folder = workdir / "save/teacher/models/cifar100_resnet8_trial_0"
    out = capsys.readouterr().out
    assert "==> Last-epoch accuracy:" in out and "==> Best accuracy:" in out
    assert set(torch.load(folder / "ckpt_epoch_2.pth")) == {"epoch", "model", "accuracy", "optimizer"}
    assert set(torch.load(folder / "resnet8_last.pth", weights_only=False)) == {"opt", "model", "optimizer"}
    if (folder / "resnet8_best.pth").exists():
        assert set(torch.load(folder / "resnet8_best.pth")) == {"epoch", "model", "best_acc", "optimizer"}
    assert any((workdir / "save/teacher/tensorboard/cifar100_resnet8_trial_0").iterdir())
    straight = _model(folder / "resnet8_last.pth")

    torch.manual_seed(1)
    train_teacher.main([*argv, "-t", "1", "--epochs", "1"])
    train_teacher.main([*argv, "-t", "1", "--resume"])
    resumed = _model(workdir / "save/teacher/models/cifar100_resnet8_trial_1/resnet8_last.pth")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


@pytest.mark.parametrize("method", ["kd", "hint", "icd"])
def test_student_one_epoch(workdir: Path, capsys: pytest.CaptureFixture[str], method: str) -> None:
    train_student.main(["--path_t", TEACHER, "--distill", method, "-a", "1", "-b", "1", "--save_freq", "1", *FAST])
    out = capsys.readouterr().out
    assert "Teacher accuracy:" in out and "==> Best student accuracy:" in out
    folder = (
        workdir / f"save/student/student_model/{method.upper()}_cifar100_S_resnet8_T_resnet8_r_1_a_1.0_b_1.0_trial_1"
    )
    assert set(torch.load(folder / "ckpt_epoch_1.pth")) == {"epoch", "model", "accuracy"}
    last = torch.load(folder / "resnet8_last.pth", weights_only=False)
    assert set(last) == {"opt", "model"} and last["opt"].distill == method
    if (folder / "resnet8_best.pth").exists():
        assert set(torch.load(folder / "resnet8_best.pth")) == {"epoch", "model", "best_acc"}


def test_student_resume_is_bit_identical(workdir: Path) -> None:
    base = ["--path_t", TEACHER, "--distill", "rrd", "-a", "1", "-b", "1", "--nce_k", "32", *FAST]
    torch.manual_seed(2)
    train_student.main([*base, "--epochs", "2"])
    torch.manual_seed(2)
    train_student.main([*base, "--trial", "2"])
    train_student.main([*base, "--trial", "2", "--epochs", "2", "--resume"])
    folder = workdir / "save/student/student_model"
    straight = _model(folder / "RRD_cifar100_S_resnet8_T_resnet8_r_1_a_1.0_b_1.0_trial_1/resnet8_last.pth")
    resumed = _model(folder / "RRD_cifar100_S_resnet8_T_resnet8_r_1_a_1.0_b_1.0_trial_2/resnet8_last.pth")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


@pytest.mark.parametrize(
    "method",
    [
        "crd",
        "rrd",
        "abound",
        "factor",
        "fsp",
        "vid",
        "correlation",
        "attention",
        "similarity",
        "rkd",
        "pkt",
        "kdsvd",
        "nst",
    ],
)
def test_student_one_epoch_other_methods(workdir: Path, method: str) -> None:
    argv = ["--path_t", TEACHER, "--distill", method, "-a", "0", "-b", "1", "--nce_k", "32", "--init_epochs", "1"]
    train_student.main([*argv, *FAST])
    assert list((workdir / "save/student/student_model").glob("*/resnet8_last.pth"))
