"""CIFAR-10/100 readers and writer: round trip, torchvision parity, subclassing, one-line layout errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms

from kdrepro_shared.data import (
    CIFAR10,
    CIFAR100,
    DatasetExistsError,
    DatasetLayoutError,
    write_cifar,
    write_fake_cifar,
)


def _random(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _unpickle(path: Path) -> dict:
    with path.open("rb") as f:
        return pickle.load(f, encoding="latin1")


def test_cifar100_round_trip_is_exact(tmp_path: Path) -> None:
    x_train, x_test = _random(30, 1), _random(12, 2)
    y_train, y_test = np.arange(30) % 6, np.arange(12) % 6
    names = [f"name {i}" for i in range(6)]
    folder = write_cifar(
        tmp_path, x_train, y_train, x_test, y_test, num_classes=6, class_names=names, coarse_labels=[0, 0, 1, 1, 2, 2]
    )
    assert folder == tmp_path / "cifar-100-python"
    assert sorted(p.name for p in folder.iterdir()) == ["meta", "test", "train"]
    train = _unpickle(folder / "train")
    assert set(train) == {"data", "fine_labels", "coarse_labels", "filenames", "batch_label"}
    assert train["data"].dtype == np.uint8 and train["data"].shape == (30, 3072)
    assert train["coarse_labels"] == [y // 2 for y in y_train.tolist()]
    assert _unpickle(folder / "meta") == {
        "fine_label_names": names,
        "coarse_label_names": ["coarse_0", "coarse_1", "coarse_2"],
    }

    for is_train, x, y in ((True, x_train, y_train), (False, x_test, y_test)):
        ds = CIFAR100(tmp_path, train=is_train)
        assert len(ds) == len(x) and ds.train is is_train
        assert ds.data.dtype == np.uint8 and ds.data.shape == (len(x), 32, 32, 3)
        np.testing.assert_array_equal(ds.data, x)
        assert ds.targets == y.tolist() and all(type(t) is int for t in ds.targets)
        assert ds.classes == names and ds.class_to_idx == {n: i for i, n in enumerate(names)}
        image, target = ds[3]
        assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (32, 32)
        np.testing.assert_array_equal(np.asarray(image), x[3])
        assert target == y[3]


def test_cifar10_spreads_train_over_five_batches_and_reads_back_in_order(tmp_path: Path) -> None:
    x_train, x_test = _random(23, 3), _random(7, 4)
    y_train, y_test = np.arange(23) % 10, np.arange(7) % 10
    folder = write_cifar(tmp_path, x_train, y_train, x_test, y_test, num_classes=10)
    assert folder.name == "cifar-10-batches-py"
    expected = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)
    batches = [_unpickle(folder / f"data_batch_{i}") for i in range(1, 6)]
    assert [len(b["labels"]) for b in batches] == [5, 5, 5, 4, 4]
    assert batches[0]["batch_label"] == "training batch 1 of 5"
    assert _unpickle(folder / "batches.meta")["label_names"] == [f"class_{i}" for i in range(10)]

    train, test = CIFAR10(tmp_path), CIFAR10(str(tmp_path), train=False)
    np.testing.assert_array_equal(train.data, x_train)
    np.testing.assert_array_equal(test.data, x_test)
    assert train.targets == y_train.tolist() and test.targets == y_test.tolist()
    assert "Split: Test" in repr(test)


@pytest.mark.parametrize(("ours", "theirs", "num_classes"), [(CIFAR10, "CIFAR10", 10), (CIFAR100, "CIFAR100", 100)])
def test_matches_torchvision_without_its_md5_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ours: type, theirs: str, num_classes: int
) -> None:
    write_fake_cifar(tmp_path, num_classes, n_train=num_classes * 2, n_test=num_classes)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *_args, **_kw: True)
    for train in (True, False):
        a, b = ours(tmp_path, train=train), getattr(torchvision.datasets, theirs)(str(tmp_path), train=train)
        np.testing.assert_array_equal(a.data, b.data)
        assert (a.targets, a.classes, a.class_to_idx) == (b.targets, b.classes, b.class_to_idx)
        np.testing.assert_array_equal(np.asarray(a[5][0]), np.asarray(b[5][0]))


def test_transforms_and_fake_labels_are_balanced(tmp_path: Path) -> None:
    write_fake_cifar(tmp_path, 100, n_train=300, n_test=100, seed=7)
    ds = CIFAR100(tmp_path, transform=transforms.ToTensor(), target_transform=lambda y: y + 1000)
    assert np.bincount(ds.targets).tolist() == [3] * 100
    image, target = ds[0]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 32, 32) and image.dtype == torch.float32
    torch.testing.assert_close(image, torch.from_numpy(ds.data[0]).permute(2, 0, 1).float() / 255)
    assert target == ds.targets[0] + 1000


def test_easy_to_subclass_like_repdistiller_instance(tmp_path: Path) -> None:
    class CIFAR100Instance(CIFAR100):
        def __getitem__(self, index: int) -> tuple:
            img, target = super().__getitem__(index)
            return img, target, index

    write_fake_cifar(tmp_path, 100)
    ds = CIFAR100Instance(root=tmp_path, train=True, transform=transforms.ToTensor())
    _, target, index = ds[17]
    assert (target, index) == (ds.targets[17], 17)


def _one_line(err: pytest.ExceptionInfo[DatasetLayoutError]) -> str:
    message = str(err.value)
    assert "\n" not in message and isinstance(err.value, FileNotFoundError)
    return message


def test_wrong_root_names_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError) as err:
        CIFAR100(tmp_path)
    message = _one_line(err)
    assert f"CIFAR-100 not found under {tmp_path}" in message
    assert f"{tmp_path}/cifar-100-python/{{train,test,meta}} (the python-pickle layout torchvision writes)" in message
    with pytest.raises(DatasetLayoutError) as err:
        CIFAR10(tmp_path / "nowhere")
    assert "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}" in _one_line(err)


def test_dataset_folder_itself_as_root_says_pass_the_parent(tmp_path: Path) -> None:
    folder = write_fake_cifar(tmp_path, 100)
    with pytest.raises(DatasetLayoutError) as err:
        CIFAR100(folder)
    assert f"pass its parent {tmp_path}" in _one_line(err)


def test_missing_file_and_corrupt_pickle(tmp_path: Path) -> None:
    folder = write_fake_cifar(tmp_path, 10)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        CIFAR10(tmp_path)
    assert "missing data_batch_3" in _one_line(err)
    CIFAR10(tmp_path, train=False)  # the test split does not need the train batches
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DatasetLayoutError) as err:
        CIFAR10(tmp_path, train=False)
    assert "test_batch is not a CIFAR-10 pickle" in _one_line(err)


def test_writer_keeps_identical_copy_and_refuses_to_overwrite(tmp_path: Path) -> None:
    folder = write_fake_cifar(tmp_path, 100, seed=0)
    stamp = (folder / "train").stat().st_mtime_ns
    assert write_fake_cifar(tmp_path, 100, seed=0) == folder
    assert (folder / "train").stat().st_mtime_ns == stamp
    with pytest.raises(DatasetExistsError, match="already exists and is not empty"):
        write_fake_cifar(tmp_path, 100, seed=1)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_writer_rejects_bad_arrays(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="images_train must be uint8 of shape"):
        write_cifar(tmp_path, np.zeros((2, 32, 32), np.uint8), [0, 1], _random(1, 0), [0])
    with pytest.raises(ValueError, match="labels_test must be 1 integers in"):
        write_cifar(tmp_path, _random(2, 0), [0, 1], _random(1, 0), [100])
    with pytest.raises(ValueError, match="coarse_labels only exist"):
        write_cifar(tmp_path, _random(2, 0), [0, 1], _random(1, 0), [0], num_classes=10, coarse_labels=[0] * 10)
