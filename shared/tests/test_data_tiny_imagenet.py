"""TinyImageNet-200 reader and writer: raw zip layout, get_tinyimagenet.sh layout, class order, layout errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets, transforms

from kdrepro_shared.data import (
    DatasetLayoutError,
    TinyImageNet,
    write_fake_image_folder,
    write_fake_tiny_imagenet,
    write_tiny_imagenet,
)

WNIDS = ["n03", "n01", "n02"]  # deliberately unsorted, like the real wnids.txt


def _smooth(n: int, seed: int) -> np.ndarray:
    coarse = np.random.default_rng(seed).integers(0, 256, size=(n, 4, 4, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(c).resize((64, 64), Image.Resampling.BILINEAR)) for c in coarse])


def _reorganise(base: Path) -> None:
    """What get_tinyimagenet.sh does: train images up one level, val images into wnid folders, txt files gone."""
    for wnid_dir in (base / "train").iterdir():
        for image in (wnid_dir / "images").iterdir():
            image.rename(wnid_dir / image.name)
        (wnid_dir / "images").rmdir()
        (wnid_dir / f"{wnid_dir.name}_boxes.txt").unlink()
    for line in (base / "val" / "val_annotations.txt").read_text().splitlines():
        name, wnid = line.split("\t")[:2]
        (base / "val" / wnid).mkdir(exist_ok=True)
        (base / "val" / "images" / name).rename(base / "val" / wnid / name)
    (base / "val" / "images").rmdir()
    (base / "val" / "val_annotations.txt").unlink()


def test_writes_the_zip_layout(tmp_path: Path) -> None:
    base = write_fake_tiny_imagenet(tmp_path, num_classes=3, per_class_train=2, per_class_val=1, n_test=2)
    assert base == tmp_path / "tiny-imagenet-200"
    files = sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
    assert files == [
        "test/images/test_0.JPEG",
        "test/images/test_1.JPEG",
        *(
            f"train/n0000000{k}/{name}"
            for k in range(3)
            for name in (f"images/n0000000{k}_0.JPEG", f"images/n0000000{k}_1.JPEG", f"n0000000{k}_boxes.txt")
        ),
        "val/images/val_0.JPEG",
        "val/images/val_1.JPEG",
        "val/images/val_2.JPEG",
        "val/val_annotations.txt",
        "wnids.txt",
        "words.txt",
    ]
    assert (base / "val" / "val_annotations.txt").read_text().splitlines()[0].split("\t") == [
        "val_0.JPEG",
        "n00000000",
        "0",
        "0",
        "63",
        "63",
    ]
    assert (base / "train/n00000001/n00000001_boxes.txt").read_text().startswith("n00000001_0.JPEG\t0\t0\t63\t63\n")
    assert (base / "words.txt").read_text().splitlines()[0] == "n00000000\tsynthetic class 0"
    with Image.open(base / "val/images/val_0.JPEG") as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 64))


def test_reads_raw_layout_with_sorted_wnid_classes(tmp_path: Path) -> None:
    x_train, x_val = _smooth(6, 0), _smooth(6, 1)
    y_train, y_val = [0, 1, 2, 0, 1, 2], [2, 2, 1, 0, 1, 0]  # indices into WNIDS
    write_tiny_imagenet(tmp_path, x_train, y_train, x_val, y_val, wnids=WNIDS)
    sorted_index = {w: i for i, w in enumerate(sorted(WNIDS))}
    train = TinyImageNet(tmp_path, "train", transform=transforms.ToTensor())
    assert train.classes == ["n01", "n02", "n03"] and train.class_to_idx == sorted_index
    assert len(train) == 6 and sorted(train.targets) == sorted(sorted_index[WNIDS[y]] for y in y_train)
    image, target = train[0]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 64, 64) and target == 0

    val = TinyImageNet(tmp_path, "val")
    assert len(val) == 6 and val.classes == train.classes
    for (path, target), (image, same_target) in zip(val.samples, val, strict=True):
        i = int(Path(path).stem.split("_")[1])
        assert target == same_target == sorted_index[WNIDS[y_val[i]]]
        decoded = np.asarray(Image.open(path).convert("RGB"))
        np.testing.assert_array_equal(np.asarray(image), decoded)  # the reader adds nothing to what is on disk
        assert np.abs(decoded.astype(int) - x_val[i]).mean() < 2  # JPEG at quality 95 is close, not exact
    assert val.targets == sorted(val.targets)


def test_raw_and_reorganised_layouts_give_the_original_imagefolder_samples(tmp_path: Path) -> None:
    base = write_fake_tiny_imagenet(tmp_path, num_classes=4, per_class_train=2, per_class_val=3)
    raw = {split: TinyImageNet(tmp_path, split) for split in ("train", "val")}
    _reorganise(base)
    for split in ("train", "val"):
        reorganised = TinyImageNet(tmp_path, split)
        original = datasets.ImageFolder(str(base / split))  # what the distillers transfer script reads
        names = [(Path(p).name, y) for p, y in original.samples]
        assert [(Path(p).name, y) for p, y in reorganised.samples] == names
        assert [(Path(p).name, y) for p, y in raw[split].samples] == names
        assert reorganised.classes == original.classes


def test_reorganised_copy_without_wnids_txt(tmp_path: Path) -> None:
    write_fake_image_folder(tmp_path / "tiny-imagenet-200", classes=("n2", "n1"), per_class=2, size=(64, 64))
    ds = TinyImageNet(tmp_path, "val")
    assert ds.classes == ["n1", "n2"] and ds.targets == [0, 0, 1, 1]


def _message(root: Path, split: str = "train") -> str:
    with pytest.raises(DatasetLayoutError) as err:
        TinyImageNet(root, split)
    message = str(err.value)
    assert "\n" not in message
    assert f"{root}/tiny-imagenet-200/{{wnids.txt,words.txt,train/<wnid>/images/<wnid>_<i>.JPEG," in message
    assert "{train,val}/<wnid>/*.JPEG" in message
    return message


def test_layout_errors(tmp_path: Path) -> None:
    assert f"TinyImageNet-200 not found under {tmp_path}" in _message(tmp_path)
    base = write_fake_tiny_imagenet(tmp_path)
    assert f"pass the parent {tmp_path}" in _message(base)
    shutil.rmtree(base / "val")
    assert f"{base / 'val'} does not exist" in _message(tmp_path, "val")
    shutil.rmtree(base / "train" / "n00000001" / "images")
    assert "no images for wnids n00000001" in _message(tmp_path, "train")
    with pytest.raises(ValueError, match="split must be one of"):
        TinyImageNet(tmp_path, "test")
