"""STL-10 reader and writer: on-disk byte order, exact round trip, splits and folds, torchvision parity, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms

from kdrepro_shared.data import STL10, STL10_CLASSES, DatasetLayoutError, write_fake_stl10, write_stl10


def _chw(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)


def test_files_are_column_major_with_labels_one_to_ten(tmp_path: Path) -> None:
    x_train, x_test = _chw(12, 0), _chw(3, 1)
    y_train, y_test = np.arange(12) % 10, [9, 0, 4]
    folder = write_stl10(tmp_path, x_train, y_train, x_test, y_test)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "train_X.bin",
            "train_y.bin",
            "test_X.bin",
            "test_y.bin",
            "unlabeled_X.bin",
            "class_names.txt",
            "fold_indices.txt",
        ]
    )
    raw = np.fromfile(folder / "train_X.bin", dtype=np.uint8)
    assert raw.size == 12 * 3 * 96 * 96
    np.testing.assert_array_equal(raw[:96], x_train[0, 0, :, 0])  # first the first column of the red plane
    assert np.fromfile(folder / "test_y.bin", dtype=np.uint8).tolist() == [10, 1, 5]
    assert (folder / "unlabeled_X.bin").stat().st_size == 0
    assert (folder / "class_names.txt").read_text().splitlines() == list(STL10_CLASSES)
    assert len((folder / "fold_indices.txt").read_text().splitlines()) == 10


def test_round_trip_splits_and_folds(tmp_path: Path) -> None:
    x_train, x_test, x_unlabeled = _chw(20, 0), _chw(10, 1), _chw(4, 2)
    y_train, y_test = (np.arange(20) * 3) % 10, np.arange(10)
    folds = [[i, (i + 7) % 20] for i in range(10)]
    write_stl10(tmp_path, x_train, y_train, x_test, y_test, images_unlabeled=x_unlabeled, folds=folds)

    train = STL10(tmp_path)
    assert (len(train), train.data.shape, train.data.dtype) == (20, (20, 3, 96, 96), np.uint8)
    np.testing.assert_array_equal(train.data, x_train)
    np.testing.assert_array_equal(train.labels, y_train)
    assert train.labels.dtype == np.int64 and train.classes == list(STL10_CLASSES)
    image, label = train[4]
    assert isinstance(image, Image.Image) and image.size == (96, 96) and label == y_train[4]
    np.testing.assert_array_equal(np.asarray(image), x_train[4].transpose(1, 2, 0))

    test = STL10(tmp_path, split="test", folds=3)  # folds only select training images, as in torchvision
    np.testing.assert_array_equal(test.data, x_test)
    assert test.labels.tolist() == list(range(10))
    unlabeled = STL10(tmp_path, split="unlabeled")
    np.testing.assert_array_equal(unlabeled.data, x_unlabeled)
    assert unlabeled.labels.tolist() == [-1] * 4 and unlabeled[0][1] == -1
    both = STL10(tmp_path, split="train+unlabeled", folds=2)
    np.testing.assert_array_equal(both.data, np.concatenate([x_train[[2, 9]], x_unlabeled]))
    assert both.labels.tolist() == [y_train[2], y_train[9], -1, -1, -1, -1]


def test_transform_and_target_transform(tmp_path: Path) -> None:
    write_fake_stl10(tmp_path)
    ds = STL10(
        tmp_path,
        transform=transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()]),
        target_transform=str,
    )
    image, label = ds[3]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 32, 32) and label == "3"


@pytest.mark.parametrize(
    ("split", "folds"), [("train", None), ("train", 4), ("test", None), ("unlabeled", None), ("train+unlabeled", 1)]
)
def test_matches_torchvision_without_its_md5_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: str, folds: int | None
) -> None:
    write_fake_stl10(tmp_path, n_train=30, n_test=10, n_unlabeled=3, seed=5)
    monkeypatch.setattr(torchvision.datasets.STL10, "_check_integrity", lambda _self: True)
    ours, theirs = STL10(tmp_path, split, folds), torchvision.datasets.STL10(str(tmp_path), split, folds)
    np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_array_equal(ours.labels, theirs.labels)
    assert ours.classes == theirs.classes and ours[0][1] == theirs[0][1]
    np.testing.assert_array_equal(np.asarray(ours[0][0]), np.asarray(theirs[0][0]))


def _message(root: Path, split: str = "train") -> str:
    with pytest.raises(DatasetLayoutError) as err:
        STL10(root, split)
    message = str(err.value)
    assert "\n" not in message
    assert f"{root}/stl10_binary/{{train_X.bin,train_y.bin,test_X.bin,test_y.bin,unlabeled_X.bin," in message
    return message


def test_layout_errors(tmp_path: Path) -> None:
    assert f"STL-10 not found under {tmp_path}" in _message(tmp_path)
    folder = write_fake_stl10(tmp_path)
    assert f"pass its parent {tmp_path}" in _message(folder)
    (folder / "unlabeled_X.bin").unlink()
    STL10(tmp_path, "train")
    assert "missing unlabeled_X.bin" in _message(tmp_path, "train+unlabeled")
    (folder / "test_X.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DatasetLayoutError, match=r"test_X.bin is 100 bytes, not a multiple of 3×96×96"):
        STL10(tmp_path, "test")
    with pytest.raises(ValueError, match="folds must be None or in"):
        STL10(tmp_path, folds=10)
