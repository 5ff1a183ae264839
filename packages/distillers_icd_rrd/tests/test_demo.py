"""The demo: its flags reach the real entry points' parsers, its table, and (slow) a full run on the digits."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from distillers_icd_rrd import demo, train_student, train_teacher
from kdrepro_shared.data import DIGITS_TRAIN_SIZE


def test_defaults_fit_the_digits() -> None:
    args = demo.parse_args([])
    assert args.methods == ["kd", "crd", "icd", "rrd"]
    assert args.nce_k < DIGITS_TRAIN_SIZE  # CRD's memory bank holds one row per training image
    assert args.nce_k % args.batch_size == 0  # RRD asserts that its queue is a whole number of batches


def test_scaled_decay_epochs() -> None:
    assert demo.scaled_decay_epochs(240) == "150,180,210"
    assert demo.scaled_decay_epochs(8) == "5,6,7"
    assert demo.scaled_decay_epochs(1) == "1,1,1"


def test_argv_parses_with_the_real_entry_points(tmp_path: Path) -> None:
    args = demo.parse_args(["--methods", "kd", "icd", "crd", "rrd", "factor"])
    path_t = "./save/models/resnet14_vanilla/ckpt_epoch_4.pth"
    with contextlib.chdir(tmp_path):  # parse_option creates the run folders
        teacher = train_teacher.parse_option(demo.teacher_argv("resnet14", 4, 64))
        students = {m: train_student.parse_option(demo.student_argv(m, path_t, args)) for m in args.methods}
    assert (teacher.model, teacher.epochs, teacher.save_freq, teacher.lr_decay_epochs) == ("resnet14", 4, 4, [2, 3, 4])
    assert (students["kd"].gamma, students["kd"].alpha, students["kd"].beta) == (0.1, 0.9, 0.0)
    assert (students["crd"].alpha, students["crd"].beta, students["crd"].nce_k) == (0.0, 0.8, 1024)
    assert all((students[m].alpha, students[m].beta) == (0.0, 1.0) for m in ("icd", "rrd"))
    assert students["factor"].init_epochs == 1
    assert {s.model_t for s in students.values()} == {"resnet14"}


def test_format_table() -> None:
    rows = [
        demo.Result("Teacher", "resnet14", "CE", 90.5, 91.25, 12.3),
        demo.Result("ICD", "resnet8", "-a 0 -b 1", 80.0, 81.0, 7.0),
    ]
    assert demo.format_table(rows).splitlines() == [
        "| run | model | loss weights | last-epoch top-1 (%) | best top-1 (%) | time (s) |",
        "| --- | --- | --- | --- | --- | --- |",
        "| Teacher | resnet14 | CE | 90.50 | 91.25 | 12 |",
        "| ICD | resnet8 | -a 0 -b 1 | 80.00 | 81.00 | 7 |",
    ]


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo.main(["--output-dir", str(tmp_path), "--teacher-epochs", "1", "--student-epochs", "1"])
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    runs = [line.split(" | ")[0].removeprefix("| ") for line in table[2:]]
    assert runs == ["Teacher", "Student (vanilla)", "KD", "CRD", "ICD", "RRD"]
    for line in table[2:]:
        last, best = (float(cell) for cell in line.split(" | ")[3:5])
        assert 0.0 <= last <= best <= 100.0
    assert (tmp_path / "save/models/resnet14_vanilla/ckpt_epoch_1.pth").is_file()
    assert (tmp_path / "save/student/student_model").is_dir()
