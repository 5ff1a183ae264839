"""COCO pipeline (reader, ViDT's joint transforms, pycocotools evaluator) vs the original on the tiny fake COCO."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from kdrepro_shared.errors import DatasetExistsError, DatasetLayoutError
from vkd.vidt.arguments import get_args_parser
from vkd.vidt.datasets import build_dataset, get_coco_api_from_dataset
from vkd.vidt.datasets.coco_eval import CocoEvaluator
from vkd.vidt.datasets.fake_coco import write_fake_coco
from vkd.vidt.datasets.transforms import resized_hw
from vkd.vidt.util.misc import collate_fn

FIXTURE = Path(__file__).parent / "fixtures" / "vidt_coco" / "coco.pt"


@pytest.fixture(scope="module")
def recorded() -> dict:
    return torch.load(FIXTURE, weights_only=False)


@pytest.fixture(scope="module")
def coco_args(tmp_path_factory: pytest.TempPathFactory):
    root = write_fake_coco(tmp_path_factory.mktemp("coco") / "coco")
    return get_args_parser().parse_args(["--coco_path", str(root), "--eval_size", "160"])


def assert_item_matches(image: torch.Tensor, target: dict, reference: dict) -> None:
    assert tuple(image.shape) == reference["shape"]
    assert image[0].shape[0] % 16 == 0 and image[0].shape[1] % 16 == 0
    flat = image.flatten()
    sample = flat[:: max(1, flat.numel() // 500)][:500]
    assert torch.allclose(sample, reference["sample"], atol=1e-5)
    assert image.double().sum().item() == pytest.approx(reference["sum"], rel=1e-6)
    assert tuple(target["masks"].shape) == reference["mask_shape"]
    for key, value in reference["target"].items():
        mine = target[key].sum((1, 2)) if key == "masks" else target[key]
        assert mine.dtype == value.dtype, key
        assert torch.allclose(mine.double(), value.double(), atol=1e-4), key


@pytest.mark.parity
def test_val_items_match_original(coco_args, recorded: dict) -> None:
    dataset = build_dataset("val", coco_args)
    assert len(dataset) == len(recorded["val"])
    for i, reference in enumerate(recorded["val"]):
        assert_item_matches(*dataset[i], reference)


@pytest.mark.parity
def test_train_augmentations_match_original_for_the_same_seeds(coco_args, recorded: dict) -> None:
    dataset = build_dataset("train", coco_args)
    for i, reference in enumerate(recorded["train"]):
        random.seed(100 + i)
        torch.manual_seed(100 + i)
        assert_item_matches(*dataset[i], reference)


@pytest.mark.parity
def test_coco_evaluator_stats_match_original(coco_args, recorded: dict) -> None:
    base = get_coco_api_from_dataset(build_dataset("val", coco_args))
    evaluator = CocoEvaluator(base, ("bbox",))
    ids = sorted(recorded["predictions"])
    evaluator.update({ids[0]: recorded["predictions"][ids[0]]})
    evaluator.update({k: recorded["predictions"][k] for k in ids[1:]})
    evaluator.synchronize_between_processes()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.coco_eval["bbox"].stats.tolist() == pytest.approx(recorded["stats"], abs=1e-9)


def test_fake_coco_boxes_are_the_shapes_extents(coco_args) -> None:
    root = Path(coco_args.coco_path)
    content = json.loads((root / "annotations" / "instances_val2017.json").read_text())
    assert {c["id"] for c in content["categories"]} == {1, 3, 90}
    for ann in content["annotations"]:
        xs, ys = ann["segmentation"][0][0::2], ann["segmentation"][0][1::2]
        assert ann["bbox"][:2] == [min(xs), min(ys)] and ann["area"] > 0
    images, targets = collate_fn([build_dataset("val", coco_args)[i] for i in range(2)])
    assert images.tensors.shape[0] == 2 and images.mask.dtype == torch.bool and len(targets) == 2
    with pytest.raises(DatasetExistsError):
        write_fake_coco(root)


def test_multiple_of_16_resize_quirk() -> None:
    assert resized_hw((500, 333), 800, 1333) == (800 - 800 % 16, 1201 - 1201 % 16)
    assert resized_hw((170, 100), 100) == (96, 160)  # short side already 100: both sides floored


def test_missing_coco_layout_is_named(tmp_path: Path) -> None:
    args = get_args_parser().parse_args(["--coco_path", str(tmp_path)])
    with pytest.raises(DatasetLayoutError, match="train2017"):
        build_dataset("train", args)
