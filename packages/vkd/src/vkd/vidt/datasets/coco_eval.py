"""DETR's `CocoEvaluator`: pycocotools COCOeval per image as batches arrive, merged across processes at the end.

Each rank evaluates its own images; `synchronize_between_processes` gathers image ids and per-image results from
every rank, keeps each image once (sorted, `np.unique`), and `accumulate`/`summarize` then give the 12 COCO stats
(AP, AP50, AP75, AP_S, AP_M, AP_L, AR1, AR10, AR100, AR_S, AR_M, AR_L).
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence

import numpy as np
import pycocotools.mask as mask_util
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from kdrepro_shared.errors import KdReproError
from vkd.vidt.util.misc import all_gather

IOU_TYPES = ("bbox", "segm", "keypoints")
STAT_NAMES = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "AR1", "AR10", "AR100", "AR_S", "AR_M", "AR_L")


class CocoEvaluator:
    """Accumulates detections (image_id -> {'boxes' xyxy, 'scores', 'labels'}) and evaluates them against `coco_gt`."""

    def __init__(self, coco_gt: COCO, iou_types: Sequence[str]) -> None:
        if not isinstance(iou_types, (list, tuple)) or any(t not in IOU_TYPES for t in iou_types):
            raise KdReproError(f"CocoEvaluator: iou_types must be a list/tuple drawn from {', '.join(IOU_TYPES)}")
        self.coco_gt = copy.deepcopy(coco_gt)
        self.iou_types = iou_types
        self.coco_eval = {t: COCOeval(self.coco_gt, iouType=t) for t in iou_types}
        self.img_ids: list[int] = []
        self.eval_imgs: dict[str, list] = {t: [] for t in iou_types}

    def update(self, predictions: dict[int, dict[str, torch.Tensor]]) -> None:
        """Evaluate one batch of predictions image by image and keep the per-image results."""
        img_ids = list(np.unique(list(predictions.keys())))
        self.img_ids.extend(img_ids)
        for iou_type in self.iou_types:
            results = self.prepare(predictions, iou_type)
            with contextlib.redirect_stdout(io.StringIO()):
                coco_dt = COCO.loadRes(self.coco_gt, results) if results else COCO()
            coco_eval = self.coco_eval[iou_type]
            coco_eval.cocoDt = coco_dt
            coco_eval.params.imgIds = list(img_ids)
            self.eval_imgs[iou_type].append(evaluate_images(coco_eval))

    def synchronize_between_processes(self) -> None:
        """Gather every rank's images and per-image results into each COCOeval (each image counted once)."""
        for iou_type in self.iou_types:
            eval_imgs = np.concatenate(self.eval_imgs[iou_type], 2)
            self.eval_imgs[iou_type] = eval_imgs
            create_common_coco_eval(self.coco_eval[iou_type], self.img_ids, eval_imgs)

    def accumulate(self) -> None:
        """Build the precision/recall tables."""
        for coco_eval in self.coco_eval.values():
            coco_eval.accumulate()

    def summarize(self) -> None:
        """Print the standard COCO table per IoU type and fill `.stats`."""
        for iou_type, coco_eval in self.coco_eval.items():
            print(f"IoU metric: {iou_type}")
            coco_eval.summarize()

    def prepare(self, predictions: dict[int, dict[str, torch.Tensor]], iou_type: str) -> list[dict]:
        """COCO result records of `predictions` for `iou_type`."""
        prepare = {
            "bbox": self.prepare_for_coco_detection,
            "segm": self.prepare_for_coco_segmentation,
            "keypoints": self.prepare_for_coco_keypoint,
        }[iou_type]
        return prepare(predictions)

    @staticmethod
    def prepare_for_coco_detection(predictions: dict[int, dict[str, torch.Tensor]]) -> list[dict]:
        """One {image_id, category_id, bbox (xywh), score} record per detection."""
        records = []
        for image_id, pred in predictions.items():
            if len(pred) == 0:
                continue
            boxes = convert_to_xywh(pred["boxes"]).tolist()
            scores, labels = pred["scores"].tolist(), pred["labels"].tolist()
            records += [
                {"image_id": image_id, "category_id": labels[k], "bbox": box, "score": scores[k]}
                for k, box in enumerate(boxes)
            ]
        return records

    @staticmethod
    def prepare_for_coco_segmentation(predictions: dict[int, dict[str, torch.Tensor]]) -> list[dict]:
        """One {image_id, category_id, segmentation (RLE of mask > 0.5), score} record per detection."""
        records = []
        for image_id, pred in predictions.items():
            if len(pred) == 0:
                continue
            masks = pred["masks"] > 0.5
            scores, labels = pred["scores"].tolist(), pred["labels"].tolist()
            rles = [
                mask_util.encode(np.array(mask[0, :, :, np.newaxis], dtype=np.uint8, order="F"))[0] for mask in masks
            ]
            for rle in rles:
                rle["counts"] = rle["counts"].decode("utf-8")
            records += [
                {"image_id": image_id, "category_id": labels[k], "segmentation": rle, "score": scores[k]}
                for k, rle in enumerate(rles)
            ]
        return records

    @staticmethod
    def prepare_for_coco_keypoint(predictions: dict[int, dict[str, torch.Tensor]]) -> list[dict]:
        """One {image_id, category_id, keypoints, score} record per detection."""
        records = []
        for image_id, pred in predictions.items():
            if len(pred) == 0:
                continue
            keypoints = pred["keypoints"].flatten(start_dim=1).tolist()
            scores, labels = pred["scores"].tolist(), pred["labels"].tolist()
            records += [
                {"image_id": image_id, "category_id": labels[k], "keypoints": kp, "score": scores[k]}
                for k, kp in enumerate(keypoints)
            ]
        return records


def convert_to_xywh(boxes: torch.Tensor) -> torch.Tensor:
    """xyxy -> COCO's (x, y, w, h)."""
    x0, y0, x1, y1 = boxes.unbind(1)
    return torch.stack((x0, y0, x1 - x0, y1 - y0), dim=1)


def evaluate_images(coco_eval: COCOeval) -> np.ndarray:
    """Run COCOeval's per-image evaluation silently; its results as a (categories, area ranges, images) array."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
    params = coco_eval.params
    categories = len(params.catIds) if params.useCats else 1
    return np.asarray(coco_eval.evalImgs).reshape(categories, len(params.areaRng), len(params.imgIds))


def merge(img_ids: list[int], eval_imgs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ranks' image ids and per-image results, each image once, in sorted id order."""
    all_ids = np.array([i for part in all_gather(img_ids) for i in part])
    all_evals = np.concatenate(all_gather(eval_imgs), 2)
    unique_ids, first = np.unique(all_ids, return_index=True)
    return unique_ids, all_evals[..., first]


def create_common_coco_eval(coco_eval: COCOeval, img_ids: list[int], eval_imgs: np.ndarray) -> None:
    """Install the merged per-image results in `coco_eval`, ready for `accumulate`."""
    merged_ids, merged_evals = merge(img_ids, eval_imgs)
    coco_eval.evalImgs = list(merged_evals.flatten())
    coco_eval.params.imgIds = list(merged_ids)
    coco_eval._paramsEval = copy.deepcopy(coco_eval.params)  # what accumulate() reads
