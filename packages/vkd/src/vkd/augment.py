"""DeiT-III "ThreeAugment" train transform of the original (`augment.py`), which replaces the timm pipeline.

Random draws: the crop and the gray/solarize/blur choice use python's `random`, flips and colour jitter use torch.
"""

from __future__ import annotations

import argparse
import random

import torch
from PIL import Image, ImageFilter, ImageOps
from timm.data.transforms import RandomResizedCropAndInterpolation
from torchvision import transforms

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class GaussianBlur:
    """PIL Gaussian blur with radius ~ U(radius_min, radius_max), applied with probability `p`."""

    def __init__(self, p: float = 0.1, radius_min: float = 0.1, radius_max: float = 2.0) -> None:
        self.prob = p
        self.radius_min = radius_min
        self.radius_max = radius_max

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.random() > self.prob:
            return img
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.radius_min, self.radius_max)))


class Solarization:
    """PIL solarize (threshold 128), applied with probability `p`."""

    def __init__(self, p: float = 0.2) -> None:
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        return ImageOps.solarize(img) if random.random() < self.p else img


class gray_scale:  # noqa: N801 -- the original's class name
    """Three-channel grayscale, applied with probability `p`."""

    def __init__(self, p: float = 0.2) -> None:
        self.p = p
        self.transf = transforms.Grayscale(3)

    def __call__(self, img: Image.Image) -> Image.Image:
        return self.transf(img) if random.random() < self.p else img


class horizontal_flip:  # noqa: N801 -- the original's class name
    """Horizontal flip decided by python's `random` with probability `p` (defined by the original, unused there)."""

    def __init__(self, p: float = 0.2, activate_pred: bool = False) -> None:
        self.p = p
        self.transf = transforms.RandomHorizontalFlip(p=1.0)

    def __call__(self, img: Image.Image) -> Image.Image:
        return self.transf(img) if random.random() < self.p else img


def aug_generator(args: argparse.Namespace) -> transforms.Compose:
    """The train transform: crop + flip, one of gray/solarize/blur, colour jitter, ToTensor, ImageNet normalisation.

    Reads `input_size`, `src` (Resize + reflect-padded RandomCrop instead of RandomResizedCrop),
    `disable_gray_solar_and_blur` and `color_jitter` (0 or None: no jitter).
    """
    img_size = args.input_size
    if args.src:
        primary = [
            transforms.Resize(img_size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.RandomCrop(img_size, padding=4, padding_mode="reflect"),
            transforms.RandomHorizontalFlip(),
        ]
    else:
        primary = [
            RandomResizedCropAndInterpolation(img_size, scale=(0.08, 1.0), interpolation="bicubic"),
            transforms.RandomHorizontalFlip(),
        ]
    secondary = []
    if not args.disable_gray_solar_and_blur:
        secondary.append(transforms.RandomChoice([gray_scale(p=1.0), Solarization(p=1.0), GaussianBlur(p=1.0)]))
    if args.color_jitter:
        secondary.append(transforms.ColorJitter(args.color_jitter, args.color_jitter, args.color_jitter))
    final = [transforms.ToTensor(), transforms.Normalize(mean=torch.tensor(MEAN), std=torch.tensor(STD))]
    return transforms.Compose(primary + secondary + final)
