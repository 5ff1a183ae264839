"""STL-10 loaders for the transfer experiment: 96×96 images resized to 32×32, STL-10 statistics."""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader

from distillers_icd_rrd.datasets._common import DATA_FOLDER, make_test_loader, resized_transforms
from kdrepro_shared.data import STL10

STL10_MEAN = (0.4467, 0.4398, 0.4066)
STL10_STD = (0.2603, 0.2566, 0.2712)


class STL10Instance(STL10):
    """STL-10 whose items are (img, target, index)."""

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        """Return the image and target with the item's index."""
        img, target = super().__getitem__(index)
        return img, target, index


def get_stl10_dataloaders(
    batch_size: int = 64, num_workers: int = 4, is_instance: bool = False, data_folder: str = DATA_FOLDER
) -> tuple[DataLoader, DataLoader] | tuple[DataLoader, DataLoader, int]:
    """(train, test) loaders over the labelled `train` (5,000) and `test` (8,000) splits, plus n_data if instance.

    Unlike the seed, nothing is downloaded: a missing ``data_folder/stl10_binary`` is a one-line layout error.
    """
    train_transform, test_transform = resized_transforms(STL10_MEAN, STL10_STD)
    train_cls = STL10Instance if is_instance else STL10
    train_set = train_cls(root=data_folder, split="train", transform=train_transform)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    test_set = STL10(root=data_folder, split="test", transform=test_transform)
    test_loader = make_test_loader(test_set, batch_size, num_workers)
    if is_instance:
        return train_loader, test_loader, len(train_set)
    return train_loader, test_loader
