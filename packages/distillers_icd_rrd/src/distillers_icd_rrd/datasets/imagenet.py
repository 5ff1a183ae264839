"""RepDistiller-style ImageNet folder loaders (224×224). Present in the seed but used by none of its scripts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader
from torchvision import transforms

from kdrepro_shared.data import ImageFolder
from kdrepro_shared.errors import KdReproError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFolderInstance(ImageFolder):
    """Image folder whose items are (img, target, index)."""

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        """Return the image and target with the item's index."""
        img, target = super().__getitem__(index)
        return img, target, index


class ImageFolderSample(ImageFolder):
    """Image folder whose items are (img, target, index[, sample_idx]): CRD negatives drawn *with* replacement."""

    def __init__(
        self,
        root: str,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        is_sample: bool = False,
        k: int = 4096,
    ) -> None:
        super().__init__(root=root, transform=transform, target_transform=target_transform)
        self.k = k
        self.is_sample = is_sample
        print("Stage1 finished!")
        if self.is_sample:
            num_classes = len(self.classes)
            positives: list[list[int]] = [[] for _ in range(num_classes)]
            for i, (_, target) in enumerate(self.imgs):
                positives[target].append(i)
            self.cls_positive = [np.asarray(p, dtype=np.int32) for p in positives]
            self.cls_negative = [
                np.asarray([i for j in range(num_classes) if j != c for i in positives[j]], dtype=np.int32)
                for c in range(num_classes)
            ]
        print("Dataset initialized!")

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        """Return (img, target, index), with [index, k negatives] appended when sampling."""
        path, target = self.imgs[index]
        img = self.loader(path)
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        if not self.is_sample:
            return img, target, index
        neg_idx = np.random.choice(self.cls_negative[target], self.k, replace=True)
        return img, target, index, np.hstack((np.asarray([index]), neg_idx))


def _imagenet_folder(dataset: str, data_folder: str) -> Path:
    """``data_folder/imagenet``, the only dataset these loaders know."""
    if dataset != "imagenet":
        raise KdReproError(f"these loaders read only the 'imagenet' dataset, got {dataset!r}")
    return Path(data_folder) / "imagenet"


def _train_transform() -> transforms.Compose:
    """RandomResizedCrop(224) → flip → tensor → ImageNet normalisation."""
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(224),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def _test_transform() -> transforms.Compose:
    """Resize(256) → CenterCrop(224) → tensor → ImageNet normalisation."""
    return transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def get_test_loader(
    dataset: str = "imagenet", batch_size: int = 128, num_workers: int = 8, data_folder: str = "./data"
) -> DataLoader:
    """The ImageNet val loader."""
    test_set = ImageFolder(_imagenet_folder(dataset, data_folder), split="val", transform=_test_transform())
    return DataLoader(test_set, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=True)


def get_dataloader_sample(  # noqa: PLR0917 (the original positional order)
    dataset: str = "imagenet",
    batch_size: int = 128,
    num_workers: int = 8,
    is_sample: bool = False,
    k: int = 4096,
    data_folder: str = "./data",
) -> tuple[DataLoader, DataLoader, int, int]:
    """(train, val, n_data, n_classes) with CRD sampling on train when `is_sample`."""
    folder = _imagenet_folder(dataset, data_folder)
    train_set = ImageFolderSample(str(folder / "train"), transform=_train_transform(), is_sample=is_sample, k=k)
    test_set = ImageFolder(folder, split="val", transform=_test_transform())
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers, pin_memory=True)
    test_loader = DataLoader(test_set, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=True)
    print("num_samples", len(train_set.samples))
    print("num_class", len(train_set.classes))
    return train_loader, test_loader, len(train_set), len(train_set.classes)


def get_imagenet_dataloader(
    dataset: str = "imagenet",
    batch_size: int = 128,
    num_workers: int = 16,
    is_instance: bool = False,
    data_folder: str = "./data",
) -> tuple[DataLoader, DataLoader] | tuple[DataLoader, DataLoader, int]:
    """(train, val) loaders, plus n_data when `is_instance`; val uses half the workers."""
    folder = _imagenet_folder(dataset, data_folder)
    train_cls = ImageFolderInstance if is_instance else ImageFolder
    train_set = train_cls(str(folder / "train"), transform=_train_transform())
    test_set = ImageFolder(folder, split="val", transform=_test_transform())
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers, pin_memory=True)
    test_loader = DataLoader(
        test_set, batch_size=batch_size, shuffle=False, num_workers=num_workers // 2, pin_memory=True
    )
    if is_instance:
        return train_loader, test_loader, len(train_set)
    return train_loader, test_loader
