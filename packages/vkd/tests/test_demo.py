"""The demo: its digits folder, its flags reach the real parser, its table, and (slow) a full run on the digits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from vkd import demo
from vkd.datasets import build_dataset
from vkd.main_distributed import get_args_parser


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_digits_folder_layout(tmp_path: Path) -> None:
    root = demo.write_digits_folder(tmp_path / "data", train_per_class=2, val_per_class=1)
    for split, per_class in (("train", 2), ("val", 1)):
        folders = sorted(p.name for p in (root / split).iterdir())
        assert folders == list(demo.CLASSES)
        assert all(len(list((root / split / c).iterdir())) == per_class for c in folders)
    options = get_args_parser().parse_args(["--data-path", str(root)])
    dataset, nb_classes = build_dataset(is_train=False, args=options)
    image, label, index = dataset[3]
    assert (tuple(image.shape), label, index, nb_classes) == ((3, 224, 224), 3, 3, 1000)


def test_argv_parses_with_the_real_parser(tmp_path: Path) -> None:
    args = demo.parse_args(["--epochs", "2", "--batch-size", "6"])
    parser = get_args_parser()
    train = parser.parse_args(demo.train_argv(args, tmp_path, tmp_path / "t.pth", tmp_path / "out"))
    assert (train.student_model, train.teacher, train.teacher_path) == (
        "deit_ti_distilled",
        "regnety_002",
        str(tmp_path / "t.pth"),
    )
    assert (train.epochs, train.batch_size, train.num_workers, train.pin_mem, train.eval_student) == (
        2,
        6,
        0,
        False,
        False,
    )
    evaluation = parser.parse_args(demo.eval_argv(args, tmp_path, tmp_path / "out" / "latest.pth.tar"))
    assert evaluation.eval_student
    assert evaluation.student_ckpt == str(tmp_path / "out" / "latest.pth.tar")


def test_defaults_fit_mixup_and_drop_last() -> None:
    args = demo.parse_args([])
    assert args.batch_size % 2 == 0  # timm Mixup needs an even batch
    assert args.train_per_class * len(demo.CLASSES) >= args.batch_size  # drop_last keeps at least one batch


def test_last_val_row_and_table(tmp_path: Path) -> None:
    csv_file = tmp_path / "r0_val.csv"
    csv_file.write_text("epoch,acc1,acc5\n0,10.00000,50.00000\n1,20.00000,60.00000\n", encoding="utf-8")
    assert demo.last_val_row(csv_file) == (20.0, 60.0)
    rows = [demo.Row("Teacher", "regnety_002", 10.0, None, 1.2), demo.Row("Student", "deit", 20.0, 60.0, 7.0)]
    assert demo.format_table(rows).splitlines()[2:] == [
        "| Teacher | regnety_002 | 10.00 | – | 1 |",
        "| Student | deit | 20.00 | 60.00 | 7 |",
    ]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo.main(["--output-dir", str(tmp_path), "--part", "classification"])
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(table) == 5
    trained, evaluated = (line.split(" | ") for line in table[3:])
    assert trained[2:4] == evaluated[2:4]  # --eval-student reproduces the training run's last validation
    assert (tmp_path / "output" / "latest.pth.tar").is_file()
