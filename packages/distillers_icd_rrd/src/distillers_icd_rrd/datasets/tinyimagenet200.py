"""TinyImageNet-200 loaders for the transfer experiment: 64×64 images resized to 32×32, ImageNet-200 statistics."""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader

from distillers_icd_rrd.datasets._common import DATA_FOLDER, make_test_loader, resized_transforms
from kdrepro_shared.data import TinyImageNet

TINY_IMAGENET_MEAN = (0.4802, 0.4481, 0.3975)
TINY_IMAGENET_STD = (0.2770, 0.2691, 0.2821)


class TinyImageNetInstance(TinyImageNet):
    """TinyImageNet-200 whose items are (img, target, index)."""

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        """Return the image and target with the item's index."""
        img, target = super().__getitem__(index)
        return img, target, index


def get_tiny_imagenet_dataloaders(
    batch_size: int = 128, num_workers: int = 8, is_instance: bool = False, data_folder: str = DATA_FOLDER
) -> tuple[DataLoader, DataLoader] | tuple[DataLoader, DataLoader, int]:
    """(train, val) loaders over ``data_folder/tiny-imagenet-200/{train,val}``, plus n_data if instance.

    The seed read these folders with ImageFolder after ``data/get_tinyimagenet.sh``; the shared reader takes that
    layout and the raw zip's, with class indices in sorted-wnid order.
    """
    train_transform, test_transform = resized_transforms(TINY_IMAGENET_MEAN, TINY_IMAGENET_STD)
    train_cls = TinyImageNetInstance if is_instance else TinyImageNet
    train_set = train_cls(data_folder, split="train", transform=train_transform)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    test_set = TinyImageNet(data_folder, split="val", transform=test_transform)
    test_loader = make_test_loader(test_set, batch_size, num_workers)
    if is_instance:
        return train_loader, test_loader, len(train_set)
    return train_loader, test_loader
