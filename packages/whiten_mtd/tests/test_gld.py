"""GLDv2 parsing, datasets, the fake writer and the samplers' yielded ids against the original (fixtures/samplers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from kdrepro_shared.errors import DatasetLayoutError
from whiten_mtd.datasets.fake_gld import write_fake_gldv2
from whiten_mtd.datasets.gld import (
    DistributedGroupSampler,
    DistributedSampler,
    GLDImageDataset,
    GLDv2,
    image_path,
    read_image_ids,
    read_landmark_groups,
)

FIXTURES = Path(__file__).parent / "fixtures/samplers"
GOLDEN = json.loads((FIXTURES / "samplers_golden.json").read_text())


@pytest.fixture
def csv_root(tmp_path: Path) -> Path:
    (tmp_path / "meta").mkdir()
    shutil.copy(FIXTURES / "train_clean.csv", tmp_path / "meta/train_clean.csv")
    return tmp_path


@pytest.mark.parity
def test_landmark_groups_match_original_parsing(csv_root: Path) -> None:
    assert read_landmark_groups(csv_root) == GOLDEN["groups"]


@pytest.mark.parity
@pytest.mark.parametrize("key", sorted(GOLDEN["group"]))
def test_group_sampler_yields_original_ids(key: str) -> None:
    world, batch, rank = (int(part[1:]) for part in key.split("_"))
    sampler = DistributedGroupSampler(rank, world, batch, GOLDEN["groups"], shuffle=True, drop_last=True)
    want = GOLDEN["group"][key]
    assert len(sampler) == want["len"]
    for epoch in ("0", "1"):
        sampler.set_epoch(int(epoch))
        assert list(sampler) == want["epochs"][epoch]


@pytest.mark.parity
@pytest.mark.parametrize("key", sorted(GOLDEN["base"]))
def test_base_sampler_counts_and_subsets(key: str) -> None:
    want = GOLDEN["base"][key]
    if key == "noshuffle_r1":
        sampler = DistributedSampler(1, 3, 2, list(range(7)), shuffle=False, drop_last=False)
    else:
        total, drop = (int(part.removeprefix("n").removeprefix("drop")) for part in key.split("_"))
        sampler = DistributedSampler(0, 8, 4, list(range(total)), drop_last=bool(drop))
        sampler.set_epoch(3)
    assert sampler._num_samples == want["num_samples"]
    assert len(sampler) == want["len"]
    assert sampler._get_subset() == want["subset"]


def test_pairs_are_two_distinct_images_of_one_landmark() -> None:
    groups = GOLDEN["groups"]
    owner = {img: k for k, group in enumerate(groups) for img in group}
    for batch in DistributedGroupSampler(0, 1, 5, groups):
        half = len(batch) // 2
        for first, second in zip(batch[:half], batch[half:], strict=True):
            assert first != second
            assert owner[first] == owner[second]


def test_fake_writer_layout_and_datasets(tmp_path: Path) -> None:
    groups = write_fake_gldv2(tmp_path, images_per_landmark=(1, 2, 3), size=(40, 30), seed=3)
    assert [len(g) for g in groups] == [1, 2, 3]
    assert all(len(i) == 16 and int(i, 16) >= 0 for g in groups for i in g)
    assert read_landmark_groups(tmp_path) == groups[1:], "single-image landmarks are dropped"
    assert read_image_ids(tmp_path) == [i for g in groups for i in g]
    header = (tmp_path / "meta/train.csv").read_text().splitlines()[0]
    assert header == "id,url,landmark_id"
    img_id = groups[2][1]
    assert image_path(tmp_path / "train", img_id) == tmp_path / "train" / img_id[0] / img_id[1] / img_id[2] / (
        img_id + ".jpg"
    )
    image, got_id = GLDImageDataset(tmp_path / "train")[img_id]
    assert got_id == img_id and image.size == (40, 30) and image.mode == "RGB"
    dataset = GLDv2(tmp_path / "train", read_image_ids(tmp_path), transform=lambda im: torch.zeros(3))
    assert len(dataset) == 6
    assert dataset[4][1] == 4


def test_missing_layout_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"meta/train_clean\.csv"):
        read_landmark_groups(tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"train_clean_ids\.txt"):
        read_image_ids(tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"train/<a>/<b>/<c>/<id>\.jpg"):
        GLDImageDataset(tmp_path / "train")["0123456789abcdef"]
