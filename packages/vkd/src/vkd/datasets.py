"""Datasets of the original (`datasets.py`): ImageNet folders yielding `(img, label, index)` and the eval transform."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from timm.data import create_transform
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch.utils.data import Dataset
from torchvision import transforms

from kdrepro_shared.data import CIFAR100, ImageFolder


class ImageFolderWithIdx(ImageFolder):
    """ImageFolder (with layout checks and one-line errors) whose items are `(img, label, index)`."""

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        img, target = super().__getitem__(index)
        return img, target, index


class CIFAR100WithIdx(CIFAR100):
    """CIFAR-100 (pickle layout under the data path) whose items are `(img, label, index)`.

    The original returned plain pairs here, which its training loop could not unpack [FIX].
    """

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        img, target = super().__getitem__(index)
        return img, target, index


def build_dataset(is_train: bool, args: argparse.Namespace) -> tuple[Dataset, int]:
    """The train or val split of `--data-set` and its class count (1000 for IMNET whatever the folder holds)."""
    transform = build_transform(is_train, args)
    if args.data_set == "CIFAR":
        return CIFAR100WithIdx(args.data_path, train=is_train, transform=transform), 100
    split = "train" if is_train else "val"
    return ImageFolderWithIdx(Path(args.data_path) / split, transform=transform), 1000


def build_transform(is_train: bool, args: argparse.Namespace) -> Any:
    """timm's train pipeline (training swaps it for `augment.aug_generator`) or Resize(size/crop ratio)+CenterCrop."""
    resize_im = args.input_size > 32
    if is_train:
        transform = create_transform(
            input_size=args.input_size,
            is_training=True,
            color_jitter=args.color_jitter,
            auto_augment=args.aa,
            interpolation=args.train_interpolation,
            re_prob=args.reprob,
            re_mode=args.remode,
            re_count=args.recount,
        )
        if not resize_im:
            transform.transforms[0] = transforms.RandomCrop(args.input_size, padding=4)
        return transform
    steps = []
    if resize_im:
        size = int(args.input_size / args.eval_crop_ratio)
        steps += [
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(args.input_size),
        ]
    steps += [transforms.ToTensor(), transforms.Normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)]
    return transforms.Compose(steps)
