"""`Predictor` of the original `predictor.py`: keypoints, descriptors, ratio matching and LMEDS homographies.

The original hard-wires the Swin student class; here `PREDICT.model_name` (default `Swin`) picks the class from
`rkd_retina.model.registry` (`SuperRetina`, `LKUNet` or `Swin`), and a ready `model` may be passed instead.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from inspect import signature
from pathlib import Path
from typing import Any

import cv2
import matplotlib.pyplot as plt
import numpy as np
import torch
import yaml
from PIL import Image
from torch import nn
from torchvision import transforms

from kdrepro_shared.errors import KdReproError, exit_on_user_error
from rkd_retina.common.checkpoint import RELEASED_WEIGHTS_HINT, load_net, read_checkpoint
from rkd_retina.common.common_util import pre_processing, remove_borders, sample_keypoint_desc, simple_nms

DEFAULT_MODEL_NAME = "Swin"
TEST_BORDER = 4
DESCRIPTOR_SCALE = 8
KEYPOINT_SIZE = 30
MIN_HOMOGRAPHY_MATCHES = 4


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def read_config(config_path: str | Path) -> dict[str, Any]:
    """Load a YAML config; a missing file is a one-line error."""
    path = Path(config_path)
    if not path.is_file():
        raise KdReproError(f"Config File doesn't Exist: {path}")
    return yaml.safe_load(path.read_text())


def load_predict_model(model_name: str, model_save_path: str | Path, device: torch.device) -> nn.Module:
    """Build the registry's inference model `model_name` (no config) and strictly load `['net']` of the checkpoint.

    A Swin checkpoint carries its teacher under `teacher.*`, so the student is built from those weights instead of
    reading `./save/SuperRetina.pth` (the original constructor always read it, only to have it overwritten).
    """
    from rkd_retina.model.registry import get_model_class  # noqa: PLC0415 (networks load only when a checkpoint does)

    checkpoint = read_checkpoint(model_save_path, "PREDICT.model_save_path", device, RELEASED_WEIGHTS_HINT)
    state = checkpoint["net"]
    model_class = get_model_class(model_name)
    teacher = {k.removeprefix("teacher."): v for k, v in state.items() if k.startswith("teacher.")}
    kwargs = {"teacher_state": teacher} if teacher and "teacher_state" in signature(model_class).parameters else {}
    model = model_class(device=device, **kwargs)
    load_net(model, state, model_save_path)
    return model


def keypoints_from_maps(
    detector_pred: torch.Tensor, descriptor_pred: torch.Tensor, nms_size: int, nms_thresh: float
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per image: (x, y) float keypoints of NMS maxima above `nms_thresh`, 4 px border removed, and C×N descriptors."""
    _, _, h, w = detector_pred.shape
    scores = simple_nms(detector_pred, nms_size).reshape(-1, h, w)
    keypoints = []
    for score in scores:
        rows_cols = torch.nonzero(score > nms_thresh)
        kept, _ = remove_borders(rows_cols, score[tuple(rows_cols.t())], TEST_BORDER, h, w)
        keypoints.append(torch.flip(kept, [1]).float())
    descriptors = [
        sample_keypoint_desc(k[None], d[None], DESCRIPTOR_SCALE)[0].cpu()
        for k, d in zip(keypoints, descriptor_pred, strict=True)
    ]
    return [k.cpu() for k in keypoints], descriptors


class Predictor:
    """Inference pipeline of the original: read and enhance a pair, detect, describe, match, fit a homography."""

    def __init__(self, config: dict[str, Any], model: nn.Module | None = None) -> None:
        predict_config = config["PREDICT"]
        device = torch.device(predict_config["device"] if torch.cuda.is_available() else "cpu")
        self.nms_size = predict_config["nms_size"]
        self.nms_thresh = predict_config["nms_thresh"]
        self.scale = 4  # kept from the original; unused
        self.knn_thresh = predict_config["knn_thresh"]
        self.image_width: int | None = None
        self.image_height: int | None = None
        self.model_image_width = predict_config["model_image_width"]
        self.model_image_height = predict_config["model_image_height"]
        if model is None:
            model_name = predict_config.get("model_name", DEFAULT_MODEL_NAME)
            model = load_predict_model(model_name, predict_config["model_save_path"], device)
        model.to(device)
        model.eval()
        self.device = device
        self.model = model
        print("Trainable Total Parameters : ", count_parameters(model))
        self.knn_matcher = cv2.BFMatcher(cv2.NORM_L2)
        self.transform = transforms.Compose(
            [transforms.Resize((self.model_image_height, self.model_image_width)), transforms.ToTensor()]
        )

    @staticmethod
    def _read_green(path: str | Path) -> np.ndarray:
        """The enhanced green channel (float32 in [0, 1]) of an image file."""
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read image {path}")
        return pre_processing(image[:, :, 1])

    def image_read(
        self, query_path: str | Path | np.ndarray, refer_path: str | Path, query_is_image: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Enhanced uint8 query and reference; with `query_is_image` the query is a float [0, 1] array as is."""
        query_image = query_path if query_is_image else self._read_green(query_path)
        refer_image = self._read_green(refer_path)
        if query_image.shape[:2] != refer_image.shape[:2]:
            raise ValueError(
                f"query {query_image.shape[:2]} and reference {refer_image.shape[:2]} (H, W) differ; "
                "a pair must have one size"
            )
        self.image_height, self.image_width = query_image.shape[:2]
        return (query_image * 255).astype(np.uint8), (refer_image * 255).astype(np.uint8)

    def draw_result(  # noqa: PLR0917 (the original positional order)
        self,
        query_image: np.ndarray,
        refer_image: np.ndarray,
        cv_kpts_query: Sequence[cv2.KeyPoint],
        cv_kpts_refer: Sequence[cv2.KeyPoint],
        matches: Sequence[Sequence[cv2.DMatch]],
        status: np.ndarray,
    ) -> None:
        """Show the pair side by side with keypoints (red) and ratio-test matches (green lines)."""
        (ha, wa), (hb, wb) = query_image.shape[:2], refer_image.shape[:2]
        vis = np.zeros((max(ha, hb), wa + wb, 3), dtype=np.uint8)
        vis[:ha, :wa] = cv2.cvtColor(query_image, cv2.COLOR_GRAY2RGB) if query_image.ndim == 2 else query_image
        vis[:hb, wa:] = cv2.cvtColor(refer_image, cv2.COLOR_GRAY2RGB) if refer_image.ndim == 2 else refer_image
        for (match, _), good in zip(matches, status, strict=False):
            if good:
                pa = tuple(int(v) for v in cv_kpts_query[match.queryIdx].pt)
                pb = (int(cv_kpts_refer[match.trainIdx].pt[0]) + wa, int(cv_kpts_refer[match.trainIdx].pt[1]))
                cv2.line(vis, pa, pb, (0, 255, 0), 2)
        query_np = np.array([kp.pt for kp in cv_kpts_query]).reshape(-1, 2)
        refer_np = np.array([kp.pt for kp in cv_kpts_refer]).reshape(-1, 2)
        plt.figure(dpi=300)
        plt.scatter(query_np[:, 0], query_np[:, 1], s=1, c="r")
        plt.scatter(refer_np[:, 0] + query_image.shape[1], refer_np[:, 1], s=1, c="r")
        plt.axis("off")
        plt.title(f"Match Result, #goodMatch: {status.sum()}")
        plt.imshow(cv2.cvtColor(vis, cv2.COLOR_BGR2RGB))
        plt.show()
        plt.close()

    def _run(self, inputs: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Keypoints and descriptors for a B×1×H×W batch."""
        with torch.no_grad():
            detector_pred, descriptor_pred = self.model(inputs.to(self.device))
        return keypoints_from_maps(detector_pred, descriptor_pred, self.nms_size, self.nms_thresh)

    def model_run_pair(
        self, query_tensor: torch.Tensor, refer_tensor: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Keypoints (N×2 xy at model resolution) and descriptors (C×N) of query and reference in one batch."""
        return self._run(torch.stack((query_tensor, refer_tensor)))

    def _cv_keypoints(self, keypoints: torch.Tensor) -> list[cv2.KeyPoint]:
        """Model-resolution keypoints as OpenCV keypoints at raw resolution (coordinates truncated to int)."""
        return [
            cv2.KeyPoint(
                int(p[0] / self.model_image_width * self.image_width),
                int(p[1] / self.model_image_height * self.image_height),
                KEYPOINT_SIZE,
            )
            for p in keypoints
        ]

    def _ratio_match(
        self, query_desc: np.ndarray, refer_desc: np.ndarray
    ) -> tuple[list[cv2.DMatch], list[bool], Sequence[Sequence[cv2.DMatch]]]:
        """kNN (k=2) matches passing the ratio test, the per-match status and all raw matches (empty on failure)."""
        good, status, matches = [], [], []
        try:
            matches = self.knn_matcher.knnMatch(query_desc, refer_desc, k=2)
            for m, n in matches:
                status.append(m.distance < self.knn_thresh * n.distance)
                if status[-1]:
                    good.append(m)
        except (cv2.error, ValueError):  # too few descriptors for k=2, as the original swallowed
            pass
        return good, status, matches

    @staticmethod
    def _lmeds(
        good: Sequence[cv2.DMatch], kpts_query: Sequence[cv2.KeyPoint], kpts_refer: Sequence[cv2.KeyPoint]
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """LMEDS homography query → reference and its inlier mask, or (None, None) below 4 matches or on failure."""
        if len(good) < MIN_HOMOGRAPHY_MATCHES:
            return None, None
        src = np.float32([kpts_query[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
        dst = np.float32([kpts_refer[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
        h_m, mask = cv2.findHomography(src, dst, cv2.LMEDS)
        return (None, None) if h_m is None else (h_m, mask)

    def match(
        self,
        query_path: str | Path | np.ndarray,
        refer_path: str | Path,
        show: bool = False,
        query_is_image: bool = False,
    ) -> tuple[list[cv2.DMatch], list[cv2.KeyPoint], list[cv2.KeyPoint], np.ndarray, np.ndarray]:
        """Ratio-test matches and raw-resolution keypoints of a pair, plus the enhanced uint8 images."""
        query_image, refer_image = self.image_read(query_path, refer_path, query_is_image)
        keypoints, descriptors = self.model_run_pair(
            self.transform(Image.fromarray(query_image)), self.transform(Image.fromarray(refer_image))
        )
        cv_kpts_query, cv_kpts_refer = self._cv_keypoints(keypoints[0]), self._cv_keypoints(keypoints[1])
        good, status, matches = self._ratio_match(descriptors[0].T.numpy(), descriptors[1].T.numpy())
        if show:
            self.draw_result(query_image, refer_image, cv_kpts_query, cv_kpts_refer, matches, np.array(status))
        return good, cv_kpts_query, cv_kpts_refer, query_image, refer_image

    def compute_homography(
        self, query_path: str | Path | np.ndarray, refer_path: str | Path, query_is_image: bool = False
    ) -> tuple[np.ndarray | None, float, np.ndarray, np.ndarray]:
        """(H query → reference or None, LMEDS inlier rate or 0, enhanced uint8 query, enhanced uint8 reference)."""
        good, kpts_query, kpts_refer, raw_query, raw_refer = self.match(
            query_path, refer_path, query_is_image=query_is_image
        )
        h_m, mask = self._lmeds(good, kpts_query, kpts_refer)
        rate = 0 if mask is None else mask.sum() / len(mask.ravel())
        return h_m, rate, raw_query, raw_refer

    def align_image_pair(self, query_path: str | Path, refer_path: str | Path, show: bool = False) -> np.ndarray | None:
        """Warp the query onto the reference; return the red (query) / green (reference) overlay, or None."""
        h_m, _, raw_query, raw_refer = self.compute_homography(query_path, refer_path)
        if h_m is None:
            print("Matched Failed!")
            return None
        h, w = self.image_height, self.image_width
        aligned = cv2.warpPerspective(raw_query, h_m, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        merged = np.zeros((h, w, 3), dtype=np.uint8)
        merged[:, :, 0] = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY) if aligned.ndim == 3 else aligned
        merged[:, :, 1] = cv2.cvtColor(raw_refer, cv2.COLOR_BGR2GRAY) if raw_refer.ndim == 3 else raw_refer
        if show:
            plt.figure(dpi=200)
            plt.imshow(merged)
            plt.axis("off")
            plt.title("Registration Result")
            plt.show()
            plt.close()
        return merged

    def model_run_one_image(
        self, image_path: str | Path, save_path: str | Path | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints (N×2) and descriptors (C×N) of one image; optionally saved as {'kp', 'desc'}."""
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read image {image_path}")
        self.image_height, self.image_width = image.shape[:2]
        image_tensor = self.transform(Image.fromarray(pre_processing(image[:, :, 1])))
        keypoints, descriptors = self._run(image_tensor[None])
        if save_path is not None:
            torch.save({"kp": keypoints[0], "desc": descriptors[0]}, save_path)
        return keypoints[0], descriptors[0]

    def homography_from_tensor(
        self, query_info: dict[str, torch.Tensor], refer_info: dict[str, torch.Tensor]
    ) -> tuple[np.ndarray | None, int]:
        """Homography and LMEDS inlier count from two saved {'kp', 'desc'} dicts (raw size from the last image run)."""
        kpts_query, kpts_refer = self._cv_keypoints(query_info["kp"]), self._cv_keypoints(refer_info["kp"])
        good, _, _ = self._ratio_match(query_info["desc"].T.numpy(), refer_info["desc"].T.numpy())
        h_m, mask = self._lmeds(good, kpts_query, kpts_refer)
        return h_m, 0 if mask is None else int(mask.sum())


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """The original's demo: match and align `query.jpg` / `refer.jpg`, showing both plots."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="config/test.yaml")
    parser.add_argument("--query", default="./data/samples/query.jpg")
    parser.add_argument("--refer", default="./data/samples/refer.jpg")
    args = parser.parse_args(argv)
    predictor = Predictor(read_config(args.config))
    predictor.match(args.query, args.refer, show=True)
    merged = predictor.align_image_pair(args.query, args.refer)
    if merged is not None:
        plt.imshow(merged)
        plt.show()
