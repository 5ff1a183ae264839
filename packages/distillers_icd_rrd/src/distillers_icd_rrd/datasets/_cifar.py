"""What the seed's CIFAR-10 and CIFAR-100 loaders share: the index-returning item, CRD's sampled set, the loaders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader

from distillers_icd_rrd.datasets._common import (
    InstanceSampleMixin,
    cifar_test_transform,
    cifar_train_transform,
    make_test_loader,
)
from kdrepro_shared.data import CIFAR10


class IndexedMixin:
    """Items are (img, target, index): the index lets the memory-based methods address their banks."""

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        """Return the image and target with the item's index."""
        img, target = super().__getitem__(index)
        return img, target, index


class SampledMixin(InstanceSampleMixin):
    """A CIFAR set with CRD's sampler; `num_classes` is set by the concrete class."""

    num_classes: int

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
        self.init_sampling(self.num_classes, k, mode, is_sample, percent)


def instance_loaders(
    plain_cls: type[CIFAR10],
    instance_cls: type[CIFAR10],
    *,
    batch_size: int,
    num_workers: int,
    is_instance: bool,
    data_folder: str,
) -> tuple[DataLoader, DataLoader] | tuple[DataLoader, DataLoader, int]:
    """(train, test) loaders, plus the train size when `is_instance` (items then carry their index).

    The train loader shuffles and drops the last partial batch (the seed's addition to RepDistiller).
    """
    train_cls = instance_cls if is_instance else plain_cls
    train_set = train_cls(root=data_folder, train=True, transform=cifar_train_transform())
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers, drop_last=True)
    test_set = plain_cls(root=data_folder, train=False, transform=cifar_test_transform())
    test_loader = make_test_loader(test_set, batch_size, num_workers)
    if is_instance:
        return train_loader, test_loader, len(train_set)
    return train_loader, test_loader


def sample_loaders(
    plain_cls: type[CIFAR10],
    sample_cls: type[SampledMixin],
    *,
    batch_size: int,
    num_workers: int,
    data_folder: str,
    **sampling: Any,
) -> tuple[DataLoader, DataLoader, int]:
    """(train, test, n_data) for CRD (`sampling`: k, mode, is_sample, percent).

    Unlike the instance loader, the train loader keeps its last partial batch.
    """
    train_set = sample_cls(data_folder, train=True, transform=cifar_train_transform(), **sampling)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    test_set = plain_cls(root=data_folder, train=False, transform=cifar_test_transform())
    return train_loader, make_test_loader(test_set, batch_size, num_workers), len(train_set)
