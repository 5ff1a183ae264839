"""ViDT datasets (`vidt/datasets`): COCO 2017 with DETR's joint transforms and the pycocotools evaluator."""

from __future__ import annotations

import argparse

import torch.utils.data
import torchvision
from pycocotools.coco import COCO

from kdrepro_shared.errors import KdReproError
from vkd.vidt.datasets.coco import build as build_coco

DATASETS = ("coco",)


def get_coco_api_from_dataset(dataset: torch.utils.data.Dataset) -> COCO | None:
    """The pycocotools `COCO` index behind `dataset` (through up to 10 `Subset` wrappers), else None."""
    for _ in range(10):
        if isinstance(dataset, torch.utils.data.Subset):
            dataset = dataset.dataset
    if isinstance(dataset, torchvision.datasets.CocoDetection):
        return dataset.coco
    return None


def build_dataset(image_set: str, args: argparse.Namespace) -> torch.utils.data.Dataset:
    """The `image_set` split of `--dataset_file` (only `coco` works in the original for VkD)."""
    if args.dataset_file == "coco":
        return build_coco(image_set, args)
    raise KdReproError(f"--dataset_file {args.dataset_file!r} is not supported; use one of: {', '.join(DATASETS)}")
