"""`RetinaDataset` of the original `dataset/retina_dataset.py`, with its imgaug augmentation re-implemented.

The original wraps imgaug 0.4.0 `Sequential([Multiply((1.0, 1.2)), Sometimes(0.2, GaussianBlur(sigma=(0, 6))),
Sometimes(0.2, LinearContrast((0.75, 1.2)))], random_order=True)`; imgaug does not import on numpy 2, so the three
augmenters are written here with the same parameter distributions and the same float32 arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, get_worker_info
from torchvision import transforms

from kdrepro_shared.errors import DatasetLayoutError
from rkd_retina.common.common_util import pre_processing

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tiff", ".bmp", ".gif")
LAYOUT = "<root>/ImageData/<image>, <root>/Annotations/<label>.txt, <root>/ImageSets/<split> ('<image>, <label>' lines)"
MULTIPLY_RANGE = (1.0, 1.2)
BLUR_SIGMA_RANGE = (0.0, 6.0)
CONTRAST_RANGE = (0.75, 1.2)
SOMETIMES_PROB = 0.2
BLUR_EPS = 1e-3


def blur_kernel_size(sigma: float) -> int:
    """imgaug's Gaussian kernel size for `sigma`: 3.3σ / 2.9σ / 2.6σ (σ < 3 / < 5 / else), at least 5, made odd."""
    factor = 3.3 if sigma < 3.0 else 2.9 if sigma < 5.0 else 2.6
    ksize = int(max(factor * sigma, 5))
    return ksize + 1 if ksize % 2 == 0 else ksize


def multiply(image: np.ndarray, factor: float) -> np.ndarray:
    """imgaug `Multiply` on a float image: scale by `factor`, no clipping."""
    return image * factor


def linear_contrast(image: np.ndarray, alpha: float) -> np.ndarray:
    """imgaug `LinearContrast` on a float image: centre 0, so a plain scale by `alpha`, no clipping."""
    return image * alpha


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """imgaug `GaussianBlur` through OpenCV (reflect-101 border); a no-op for σ ≤ 1e-3."""
    if sigma <= BLUR_EPS:
        return image
    ksize = blur_kernel_size(sigma)
    return cv2.GaussianBlur(image, (ksize, ksize), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


@dataclass(frozen=True)
class AugmentParams:
    """One draw of the augmentation: op order, multiply factor, and blur σ / contrast α (None when skipped)."""

    order: tuple[int, ...]
    multiply: float
    blur_sigma: float | None
    contrast: float | None


class RetinaAugmenter:
    """Random-order Multiply, Sometimes(0.2) GaussianBlur and Sometimes(0.2) LinearContrast on a float image."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        """Restart the random stream (used once per DataLoader worker so workers do not replay each other)."""
        self.rng = np.random.default_rng(seed)

    def sample(self) -> AugmentParams:
        """Draw one parameter set with the original's distributions."""
        order = tuple(int(i) for i in self.rng.permutation(3))
        factor = float(self.rng.uniform(*MULTIPLY_RANGE))
        sigma = float(self.rng.uniform(*BLUR_SIGMA_RANGE)) if self.rng.random() < SOMETIMES_PROB else None
        alpha = float(self.rng.uniform(*CONTRAST_RANGE)) if self.rng.random() < SOMETIMES_PROB else None
        return AugmentParams(order, factor, sigma, alpha)

    @staticmethod
    def apply(image: np.ndarray, params: AugmentParams) -> np.ndarray:
        """Apply a drawn parameter set to a float32 H×W image, in the drawn order."""
        ops = (
            lambda x: multiply(x, params.multiply),
            lambda x: x if params.blur_sigma is None else gaussian_blur(x, params.blur_sigma),
            lambda x: x if params.contrast is None else linear_contrast(x, params.contrast),
        )
        for i in params.order:
            image = ops[i](image)
        return image

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Augment one image with a fresh draw."""
        return self.apply(image, self.sample())


def load_keypoint_labels(label_path: str | Path) -> np.ndarray:
    """n×2 normalised (x, y) keypoints of a label file; a single-row file gives 1×2 (the original crashed)."""
    try:
        points = np.loadtxt(label_path, ndmin=2)
    except ValueError as err:
        raise DatasetLayoutError(f"label file {label_path} is not rows of 'x y' floats: {err}") from None
    if points.size and points.shape[1] != 2:
        raise DatasetLayoutError(f"label file {label_path} has {points.shape[1]} columns; expected 2 ('x y' in [0, 1))")
    if points.size and (points.min() < 0 or points.max() >= 1):
        raise DatasetLayoutError(f"label file {label_path} has coordinates outside [0, 1) (normalised x y expected)")
    return points.reshape(-1, 2)


class RetinaDataset(Dataset):
    """Labelled images listed in `<data_path>/ImageSets/<split_file>` plus every image of an unlabelled folder.

    Items are `(1×H×W float image, has_label, 1×H×W binary label map, label file name or '[None]')`.
    """

    def __init__(
        self,
        data_path: str | Path,
        split_file: str = "train.txt",
        is_train: bool = True,
        data_shape: tuple[int, int] = (768, 768),
        auxiliary: str | Path | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        root = Path(data_path)
        self.image_path = root / "ImageData"
        self.label_path = root / "Annotations"
        self.split_file = root / "ImageSets" / split_file
        for needed in (self.image_path, self.label_path, self.split_file):
            if not needed.exists():
                raise DatasetLayoutError(f"{needed} does not exist; the labelled set needs {LAYOUT}")
        self.is_train = is_train
        self.model_image_height, self.model_image_width = data_shape[0], data_shape[1]
        self.enhancement_sequential = RetinaAugmenter(seed)
        self._augmenter_worker: int | None = None

        self.data: list[tuple[Path, Path | None]] = []
        for line in self.split_file.read_text().splitlines():
            fields = line.strip().split(", ")
            if len(fields) != 2:  # headers and malformed lines are skipped, as originally
                continue
            image, label = self.image_path / fields[0], self.label_path / fields[1]
            if image.exists() and label.exists():
                self.data.append((image, label))
        phase = "train" if is_train else "eval"
        if auxiliary is not None and Path(auxiliary).exists():
            print("-" * 10 + f"Load Lab {phase} data and auxiliary data without labels" + "-" * 10)
            for name in sorted(p.name for p in Path(auxiliary).iterdir()):
                if name.lower().endswith(IMAGE_SUFFIXES):
                    self.data.append((Path(auxiliary) / name, None))
        else:
            print("-" * 10 + f"Load Lab {phase} data, and there is no auxiliary data" + "-" * 10)
        if not self.data:
            raise DatasetLayoutError(f"{self.split_file} lists no existing image/label pair; the set needs {LAYOUT}")
        self.transforms = transforms.Compose(
            [transforms.Resize((self.model_image_height, self.model_image_width)), transforms.ToTensor()]
        )

    def __len__(self) -> int:
        return len(self.data)

    def _augment(self, image: np.ndarray) -> np.ndarray:
        """Augment with the dataset's stream, reseeded once per DataLoader worker from the worker's torch seed."""
        worker = get_worker_info()
        if worker is not None and self._augmenter_worker != worker.id:
            self.enhancement_sequential.reseed(worker.seed % 2**32)
            self._augmenter_worker = worker.id
        return self.enhancement_sequential(image)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, bool, torch.Tensor, str]:
        image_path, label_path = self.data[index]
        image = pre_processing(np.asarray(Image.open(image_path).convert("RGB"))[:, :, 1])
        if self.is_train:
            image = self._augment(image)
        image_tensor = self.transforms(Image.fromarray(image))
        label_map = torch.zeros([1, self.model_image_height, self.model_image_width])
        if label_path is None:
            return image_tensor, False, label_map, "[None]"
        points = load_keypoint_labels(label_path)
        cols = (points[:, 0] * image_tensor.shape[-1]).astype(np.int64)  # truncation, as float indexing did
        rows = (points[:, 1] * image_tensor.shape[-2]).astype(np.int64)
        label_map[0, rows, cols] = 1
        return image_tensor, True, label_map, label_path.name
