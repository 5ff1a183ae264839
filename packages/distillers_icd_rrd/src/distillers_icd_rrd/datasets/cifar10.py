"""CIFAR-10 train/test loaders of the seed (normalised with the CIFAR-100 statistics, as the seed does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader

from distillers_icd_rrd.datasets._common import (
    DATA_FOLDER,
    InstanceSampleMixin,
    cifar_test_transform,
    cifar_train_transform,
    make_test_loader,
)
from kdrepro_shared.data import CIFAR10


class CIFAR10Instance(CIFAR10):
    """CIFAR-10 whose items are (img, target, index)."""

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        """Return the image and target with the item's index."""
        img, target = super().__getitem__(index)
        return img, target, index


def get_cifar10_dataloaders(
    batch_size: int = 128, num_workers: int = 8, is_instance: bool = False, data_folder: str = DATA_FOLDER
) -> tuple[DataLoader, DataLoader] | tuple[DataLoader, DataLoader, int]:
    """(train, test) loaders, plus the train size when `is_instance` (items then carry their index).

    The train loader shuffles and drops the last partial batch (the seed's addition to RepDistiller).
    """
    train_cls = CIFAR10Instance if is_instance else CIFAR10
    train_set = train_cls(root=data_folder, train=True, transform=cifar_train_transform())
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers, drop_last=True)
    test_set = CIFAR10(root=data_folder, train=False, transform=cifar_test_transform())
    test_loader = make_test_loader(test_set, batch_size, num_workers)
    if is_instance:
        return train_loader, test_loader, len(train_set)
    return train_loader, test_loader


class CIFAR10InstanceSample(InstanceSampleMixin, CIFAR10):
    """CIFAR-10 whose items are (img, target, index, sample_idx) for CRD; see `InstanceSampleMixin`."""

    def __init__(  # noqa: PLR0917 (the original positional order)
        self,
        root: str,
        train: bool = True,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        k: int = 4096,
        mode: str = "exact",
        is_sample: bool = True,
        percent: float = 1.0,
    ) -> None:
        super().__init__(root=root, train=train, transform=transform, target_transform=target_transform)
        self.init_sampling(10, k, mode, is_sample, percent)


def get_cifar10_dataloaders_sample(  # noqa: PLR0917 (the original positional order)
    batch_size: int = 128,
    num_workers: int = 1,
    k: int = 4096,
    mode: str = "exact",
    is_sample: bool = True,
    percent: float = 1.0,
    data_folder: str = DATA_FOLDER,
) -> tuple[DataLoader, DataLoader, int]:
    """(train, test, n_data) for CRD; unlike the instance loader, the train loader keeps its last partial batch."""
    train_set = CIFAR10InstanceSample(
        root=data_folder,
        train=True,
        transform=cifar_train_transform(),
        k=k,
        mode=mode,
        is_sample=is_sample,
        percent=percent,
    )
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    # Deviation: the seed's test set here is CIFAR-100 (a copy-paste slip that crashes validation of a 10-class
    # student on labels up to 99); the CIFAR-10 test set is what it meant.
    test_set = CIFAR10(root=data_folder, train=False, transform=cifar_test_transform())
    return train_loader, make_test_loader(test_set, batch_size, num_workers), len(train_set)
