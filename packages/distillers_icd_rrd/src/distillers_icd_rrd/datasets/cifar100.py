"""CIFAR-100 train/test loaders of the seed: instance items (with the index) and CRD's sampled negatives."""

from __future__ import annotations

from torch.utils.data import DataLoader

from distillers_icd_rrd.datasets._cifar import IndexedMixin, SampledMixin, instance_loaders, sample_loaders
from distillers_icd_rrd.datasets._common import DATA_FOLDER
from kdrepro_shared.data import CIFAR100


class CIFAR100Instance(IndexedMixin, CIFAR100):
    """CIFAR-100 whose items are (img, target, index)."""


class CIFAR100InstanceSample(SampledMixin, CIFAR100):
    """CIFAR-100 whose items are (img, target, index, sample_idx) for CRD; see `InstanceSampleMixin`."""

    num_classes = 100


def get_cifar100_dataloaders(
    batch_size: int = 128, num_workers: int = 8, is_instance: bool = False, data_folder: str = DATA_FOLDER
) -> tuple[DataLoader, DataLoader] | tuple[DataLoader, DataLoader, int]:
    """(train, test) loaders, plus the train size when `is_instance`; the train loader drops its last partial batch."""
    return instance_loaders(
        CIFAR100,
        CIFAR100Instance,
        batch_size=batch_size,
        num_workers=num_workers,
        is_instance=is_instance,
        data_folder=data_folder,
    )


def get_cifar100_dataloaders_sample(  # noqa: PLR0917 (the original positional order)
    batch_size: int = 128,
    num_workers: int = 1,
    k: int = 4096,
    mode: str = "exact",
    is_sample: bool = True,
    percent: float = 1.0,
    data_folder: str = DATA_FOLDER,
) -> tuple[DataLoader, DataLoader, int]:
    """(train, test, n_data) for CRD; the train loader keeps its last partial batch."""
    return sample_loaders(
        CIFAR100,
        CIFAR100InstanceSample,
        batch_size=batch_size,
        num_workers=num_workers,
        data_folder=data_folder,
        k=k,
        mode=mode,
        is_sample=is_sample,
        percent=percent,
    )
