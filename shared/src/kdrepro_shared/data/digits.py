"""An embedded real dataset for demos: scikit-learn's handwritten digits, written in the CIFAR-100 pickle layout.

``sklearn.datasets.load_digits`` ships with scikit-learn (1797 images, 8×8, values 0..16; no download). Each image
is scaled to 0..255 uint8, upsampled to 32×32 with PIL *bicubic* resampling and replicated to RGB; a fixed stratified
split (``train_test_split``, ``random_state=0``) keeps 1500 images for train and 297 for test. Fine labels are the
digits 0..9 named ``digit_0``..``digit_9``, and coarse labels equal fine labels. `CIFAR100` reads it back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from kdrepro_shared.data.cifar import write_cifar

DIGITS_TRAIN_SIZE = 1500
DIGITS_TEST_SIZE = 297
DIGITS_CLASSES = tuple(f"digit_{d}" for d in range(10))
DIGITS_SEED = 0


def _to_rgb32(image: np.ndarray) -> np.ndarray:
    """One 8×8 image with values 0..16 as a 32×32×3 uint8 grey image (bicubic upsampling)."""
    grey = Image.fromarray(np.round(image * (255 / 16)).astype(np.uint8))
    return np.asarray(grey.resize((32, 32), Image.Resampling.BICUBIC).convert("RGB"))


def digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(images_train, labels_train, images_test, labels_test)``: N×32×32×3 uint8 images and int64 labels 0..9."""
    # scikit-learn is imported here, not at the top: it is only needed for the demo data and slows every other import.
    from sklearn.datasets import load_digits  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    digits = load_digits()
    images = np.stack([_to_rgb32(image) for image in digits.images])
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=DIGITS_TEST_SIZE, stratify=digits.target, random_state=DIGITS_SEED
    )
    return x_train, y_train, x_test, y_test


def write_digits_cifar100(root: str | Path) -> Path:
    """Write the digits as ``root/cifar-100-python/{train,test,meta}`` and return that folder.

    Idempotent: an existing folder with exactly this content is left alone; a different non-empty one raises
    `DatasetExistsError` instead of being overwritten. The bytes are deterministic for given library versions.
    """
    images_train, labels_train, images_test, labels_test = digits_arrays()
    return write_cifar(
        root,
        images_train,
        labels_train,
        images_test,
        labels_test,
        num_classes=len(DIGITS_CLASSES),
        class_names=DIGITS_CLASSES,
        layout="cifar100",
    )
