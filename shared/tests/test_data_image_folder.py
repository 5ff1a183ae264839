"""ImageFolder reader and writers: round trip (exact for PNG, close for JPEG) and one-line layout errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets, transforms

from kdrepro_shared.data import (
    DatasetExistsError,
    DatasetLayoutError,
    ImageFolder,
    write_fake_image_folder,
    write_image_folder,
)


def _smooth(n: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """Random low-frequency images (bilinear upsampled 4×4 noise): JPEG keeps them within a few grey levels."""
    coarse = np.random.default_rng(seed).integers(0, 256, size=(n, 4, 4, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(c).resize(size[::-1], Image.Resampling.BILINEAR)) for c in coarse])


def test_png_round_trip_is_exact_and_matches_torchvision(tmp_path: Path) -> None:
    images, labels, classes = _smooth(6, (20, 24), 0), [2, 0, 1, 2, 0, 1], ["n03", "n01", "n02"]
    folder = write_image_folder(tmp_path, "train", images, labels, classes, ext=".png")
    assert folder == tmp_path / "train"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))[:2] == [
        "n01/n01_0.png",
        "n01/n01_1.png",
    ]
    ds = ImageFolder(tmp_path, split="train")
    reference = datasets.ImageFolder(str(folder))
    assert (ds.classes, ds.class_to_idx, ds.samples, ds.targets) == (
        reference.classes,
        reference.class_to_idx,
        reference.samples,
        reference.targets,
    )
    assert ds.classes == ["n01", "n02", "n03"] and ds.root == str(folder)
    by_file = {Path(path).name: np.asarray(ds.loader(path)) for path, _ in ds.samples}
    for k, name in enumerate(classes):
        ours = [im for im, y in zip(images, labels, strict=True) if y == k]
        for i, image in enumerate(ours):
            np.testing.assert_array_equal(by_file[f"{name}_{i}.png"], image)


def test_jpeg_round_trip_is_close(tmp_path: Path) -> None:
    images = _smooth(4, (32, 32), 1)
    write_image_folder(tmp_path, "val", images, [0, 0, 1, 1], ["a", "b"])
    ds = ImageFolder(tmp_path / "val")
    assert [Path(p).name for p, _ in ds.samples] == ["a_0.JPEG", "a_1.JPEG", "b_0.JPEG", "b_1.JPEG"]
    for i, (image, target) in enumerate(ds):
        assert target == i // 2
        assert np.abs(np.asarray(image, dtype=int) - images[i]).mean() < 2


def test_fake_tree_lengths_and_transform(tmp_path: Path) -> None:
    root = write_fake_image_folder(tmp_path, classes=("n1", "n2", "n3"), per_class=2, size=(16, 8))
    assert root == tmp_path and sorted(p.name for p in tmp_path.iterdir()) == ["train", "val"]
    for split in ("train", "val"):
        ds = ImageFolder(root, transform=transforms.ToTensor(), split=split)
        assert len(ds) == 6 and ds.targets == [0, 0, 1, 1, 2, 2]
        image, target = ds[5]
        assert isinstance(image, torch.Tensor) and image.shape == (3, 16, 8) and target == 2
        assert image.min() >= 0 and image.max() <= 1


def _message(root: Path, **kwargs: object) -> str:
    with pytest.raises(DatasetLayoutError) as err:
        ImageFolder(root, **kwargs)
    message = str(err.value)
    assert "\n" not in message and "<class>/<image files>" in message
    return message


def test_layout_errors(tmp_path: Path) -> None:
    assert f"image folder {tmp_path / 'nope'} not found" in _message(tmp_path / "nope")
    write_fake_image_folder(tmp_path, splits=("train",))
    assert f"{tmp_path / 'val'} not found" in _message(tmp_path, split="val")
    assert "holds train" in _message(tmp_path, split="val")
    (tmp_path / "empty").mkdir()
    assert "no class folders" in _message(tmp_path, split="empty")
    (tmp_path / "train" / "n9").mkdir()
    (tmp_path / "train" / "n9" / "notes.txt").write_text("no image")
    assert "class folders without images" in _message(tmp_path, split="train") and ": n9;" in _message(
        tmp_path, split="train"
    )
    assert len(ImageFolder(tmp_path, split="train", allow_empty=True).classes) == 3


def test_writer_refuses_non_empty_split(tmp_path: Path) -> None:
    write_fake_image_folder(tmp_path, splits=("train",))
    with pytest.raises(DatasetExistsError):
        write_fake_image_folder(tmp_path, splits=("train",))
    with pytest.raises(ValueError, match="labels must be"):
        write_image_folder(tmp_path, "val", _smooth(2, (8, 8), 0), [0, 5], ["a"])
