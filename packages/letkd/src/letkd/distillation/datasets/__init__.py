"""Dataset registry of the original: `dataset_factory(name, **kwargs)` builds a dataset by its config name.

Only the CIFAR datasets are registered: every shipped config uses CIFAR-100 (the original's ImageNet, Tiny-ImageNet
and MIT-67 classes have no configs and are not reproduced).
"""

from __future__ import annotations

from typing import Any

from kdrepro_shared.errors import KdReproError
from letkd.distillation.datasets.cifar_dataset import CIFAR10, CIFAR100

DATASETS: dict[str, type] = {"CIFAR100": CIFAR100, "CIFAR10": CIFAR10}


def dataset_factory(dataset_name: str, *args: Any, **kwargs: Any) -> Any:
    """Instantiate the dataset class registered as `dataset_name` with the remaining arguments."""
    if dataset_name not in DATASETS:
        raise KdReproError(f"unknown dataset_name {dataset_name!r}: expected one of {', '.join(DATASETS)}")
    return DATASETS[dataset_name](*args, **kwargs)


__all__ = ["CIFAR10", "CIFAR100", "DATASETS", "dataset_factory"]
