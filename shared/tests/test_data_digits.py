"""Embedded digits in the CIFAR-100 layout, and the ``python -m kdrepro_shared.data`` command line."""

from __future__ import annotations

import pickle
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from kdrepro_shared.data import (
    CIFAR10,
    CIFAR100,
    DIGITS_CLASSES,
    DIGITS_TEST_SIZE,
    DIGITS_TRAIN_SIZE,
    STL10,
    DatasetExistsError,
    ImageFolder,
    TinyImageNet,
    write_digits_cifar100,
    write_fake_cifar,
)
from kdrepro_shared.data.__main__ import main


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    write_digits_cifar100(root)
    return root


def test_sizes_labels_and_classes(digits_root: Path) -> None:
    assert (DIGITS_TRAIN_SIZE, DIGITS_TEST_SIZE) == (1500, 297)
    train, test = CIFAR100(digits_root), CIFAR100(digits_root, train=False)
    assert (len(train), len(test)) == (DIGITS_TRAIN_SIZE, DIGITS_TEST_SIZE)
    assert train.classes == list(DIGITS_CLASSES) == [f"digit_{d}" for d in range(10)]
    for ds in (train, test):
        assert set(ds.targets) == set(range(10))  # every class in both splits
        assert ds.data.shape[1:] == (32, 32, 3) and ds.data.dtype == np.uint8
    counts = np.bincount(train.targets) / np.bincount(test.targets)
    assert counts.min() > 4 and counts.max() < 6.5  # stratified: about 1500/297 per class


def test_images_are_grey_digits_not_blank(digits_root: Path) -> None:
    data = CIFAR100(digits_root).data
    assert (data[..., 0] == data[..., 1]).all() and (data[..., 1] == data[..., 2]).all()
    assert data.reshape(len(data), -1).std(axis=1).min() > 10
    assert data.max() == 255 and data.min() == 0
    image, target = CIFAR100(digits_root)[0]
    assert image.mode == "RGB" and 0 <= target <= 9


def test_pickles_have_the_cifar100_keys_and_coarse_equals_fine(digits_root: Path) -> None:
    with (digits_root / "cifar-100-python" / "test").open("rb") as f:
        test = pickle.load(f, encoding="latin1")
    assert set(test) == {"data", "fine_labels", "coarse_labels", "filenames", "batch_label"}
    assert test["coarse_labels"] == test["fine_labels"] and test["data"].shape == (DIGITS_TEST_SIZE, 3072)
    with (digits_root / "cifar-100-python" / "meta").open("rb") as f:
        assert pickle.load(f, encoding="latin1") == {
            "fine_label_names": list(DIGITS_CLASSES),
            "coarse_label_names": list(DIGITS_CLASSES),
        }


def test_deterministic_and_idempotent(digits_root: Path, tmp_path: Path) -> None:
    folder = digits_root / "cifar-100-python"
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert write_digits_cifar100(digits_root) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # left alone
    again = write_digits_cifar100(tmp_path)
    for name in ("train", "test", "meta"):
        assert (again / name).read_bytes() == (folder / name).read_bytes()


def test_never_overwrites_another_dataset(tmp_path: Path) -> None:
    write_fake_cifar(tmp_path, 100)
    with pytest.raises(DatasetExistsError, match="already exists and is not empty"):
        write_digits_cifar100(tmp_path)


def test_cli_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["digits", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and str(tmp_path / "cifar-100-python") in out and "1500 train / 297 test" in out
    assert len(CIFAR100(tmp_path)) == DIGITS_TRAIN_SIZE


@pytest.mark.parametrize(
    ("kind", "read"),
    [
        ("cifar10", CIFAR10),
        ("cifar100", lambda out: CIFAR100(out, train=False)),
        ("imagefolder", lambda out: ImageFolder(out, split="val")),
        ("tinyimagenet", lambda out: TinyImageNet(out, "val")),
        ("stl10", lambda out: STL10(out, "train+unlabeled")),
    ],
)
def test_cli_fake_copies_are_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, read) -> None:
    main(["fake", kind, str(tmp_path), "--seed", "3"])
    out = capsys.readouterr().out
    assert out.startswith(f"wrote fake {kind} to {tmp_path}") and out.count("\n") == 1
    assert len(read(tmp_path)) > 0


def test_cli_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_fake_cifar(tmp_path, 100)
    with pytest.raises(SystemExit) as exit_info:
        main(["digits", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "already exists and is not empty" in err and err.count("\n") == 1


def test_python_dash_m_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(sys.modules, "kdrepro_shared.data.__main__")  # runpy executes it afresh, as `-m` does
    monkeypatch.setattr(sys, "argv", ["python -m kdrepro_shared.data", "fake", "cifar10", str(tmp_path)])
    runpy.run_module("kdrepro_shared.data", run_name="__main__")
    assert "kdrepro_shared.data.CIFAR10(" in capsys.readouterr().out
    assert len(CIFAR10(tmp_path, train=False)) == 100
