"""COCO 2017 detection data as ViDT reads it: `instances_{train,val}2017.json` + image folders, joint transforms.

Layout under `--coco_path`: `train2017/*.jpg`, `val2017/*.jpg`, `annotations/instances_train2017.json`,
`annotations/instances_val2017.json`. Crowd instances are dropped, boxes become clamped xyxy (empty ones removed),
polygons are decoded to masks (both splits, as in the original).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torchvision
from PIL import Image
from pycocotools import mask as coco_mask

from kdrepro_shared.errors import DatasetLayoutError, KdReproError
from vkd.vidt.datasets import transforms as T

SPLITS = ("train", "val")
TRAIN_SCALES = tuple(range(480, 801, 16))  # 480, 496, ..., 800
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LAYOUT = "train2017/, val2017/, annotations/instances_train2017.json, annotations/instances_val2017.json"


class CocoDetection(torchvision.datasets.CocoDetection):
    """torchvision's COCO reader returning (image, target dict) after `ConvertCocoPolysToMask` and the transforms."""

    def __init__(self, image_set: str, img_folder: Path, ann_file: Path, transforms: T.Compose | None, return_masks):
        super().__init__(str(img_folder), str(ann_file))
        self.image_set = image_set
        self._transforms = transforms
        self.prepare = ConvertCocoPolysToMask(return_masks)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, dict]:
        img, annotations = super().__getitem__(idx)
        img, target = self.prepare(img, {"image_id": self.ids[idx], "annotations": annotations})
        if self._transforms is not None:
            img, target = self._transforms(img, target)
        return img, target


def convert_coco_poly_to_mask(segmentations: list, height: int, width: int) -> torch.Tensor:
    """Decode each instance's polygons to one (H, W) mask; (N, H, W) uint8/bool, (0, H, W) when there are none."""
    masks = []
    for polygons in segmentations:
        decoded = coco_mask.decode(coco_mask.frPyObjects(polygons, height, width))
        if decoded.ndim < 3:
            decoded = decoded[..., None]
        masks.append(torch.as_tensor(decoded, dtype=torch.uint8).any(dim=2))
    return torch.stack(masks) if masks else torch.zeros((0, height, width), dtype=torch.uint8)


class ConvertCocoPolysToMask:
    """COCO annotations to tensors: boxes (xyxy), labels, optional masks/keypoints, image_id, area, iscrowd, sizes."""

    def __init__(self, return_masks: bool = False) -> None:
        self.return_masks = return_masks

    def __call__(self, image: Image.Image, target: dict) -> tuple[Image.Image, dict]:
        w, h = image.size
        anno = [obj for obj in target["annotations"] if obj.get("iscrowd", 0) == 0]
        boxes = torch.as_tensor([obj["bbox"] for obj in anno], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2].clamp_(min=0, max=w)
        boxes[:, 1::2].clamp_(min=0, max=h)
        keep = (boxes[:, 3] > boxes[:, 1]) & (boxes[:, 2] > boxes[:, 0])
        out = {
            "boxes": boxes[keep],
            "labels": torch.tensor([obj["category_id"] for obj in anno], dtype=torch.int64)[keep],
        }
        if self.return_masks:
            out["masks"] = convert_coco_poly_to_mask([obj["segmentation"] for obj in anno], h, w)[keep]
        out["image_id"] = torch.tensor([target["image_id"]])
        if anno and "keypoints" in anno[0]:
            keypoints = torch.as_tensor([obj["keypoints"] for obj in anno], dtype=torch.float32)
            if keypoints.shape[0]:
                keypoints = keypoints.view(keypoints.shape[0], -1, 3)
            out["keypoints"] = keypoints[keep]
        out["area"] = torch.tensor([obj["area"] for obj in anno])[keep]
        out["iscrowd"] = torch.tensor([obj.get("iscrowd", 0) for obj in anno])[keep]
        out["orig_size"] = torch.as_tensor([int(h), int(w)])
        out["size"] = torch.as_tensor([int(h), int(w)])
        return image, out


def make_coco_transforms(image_set: str, args: argparse.Namespace) -> T.Compose:
    """Train: flip, then multi-scale resize (480–800, long side ≤ 1333) or resize-crop-resize; val: `--eval_size`."""
    normalize = T.Compose([T.ToTensor(), T.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD))])
    scales = list(TRAIN_SCALES)
    max_size = scales[-1] * 1333 // 800
    if image_set == "train":
        return T.Compose(
            [
                T.RandomHorizontalFlip(),
                T.RandomSelect(
                    T.RandomResize(scales, max_size=max_size),
                    T.Compose(
                        [T.RandomResize([400, 500, 600]), T.RandomSizeCrop(384, 600), T.RandomResize(scales, max_size)]
                    ),
                ),
                normalize,
            ]
        )
    if image_set == "val":
        return T.Compose([T.RandomResize([args.eval_size], max_size=args.eval_size * 1333 // 800), normalize])
    raise KdReproError(f"unknown COCO image set {image_set!r}; use one of: {', '.join(SPLITS)}")


def build(image_set: str, args: argparse.Namespace) -> CocoDetection:
    """The `image_set` split of the COCO 2017 tree under `args.coco_path` (masks decoded, as in the original)."""
    if image_set not in SPLITS:
        raise KdReproError(f"unknown COCO image set {image_set!r}; use one of: {', '.join(SPLITS)}")
    root = Path(args.coco_path)
    img_folder = root / f"{image_set}2017"
    ann_file = root / "annotations" / f"instances_{image_set}2017.json"
    missing = [str(p) for p in (root, img_folder, ann_file) if not p.exists()]
    if missing:
        raise DatasetLayoutError(f"--coco_path {root}: missing {missing[0]}; expected {LAYOUT}")
    transforms = make_coco_transforms(image_set, args)
    return CocoDetection(image_set, img_folder, ann_file, transforms=transforms, return_masks=True)
