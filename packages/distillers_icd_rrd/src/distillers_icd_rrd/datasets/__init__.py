"""The seed's data loaders (its top-level `datasets` package): CIFAR-100/10, STL-10, TinyImageNet-200, ImageNet."""

from distillers_icd_rrd.datasets.cifar10 import get_cifar10_dataloaders, get_cifar10_dataloaders_sample
from distillers_icd_rrd.datasets.cifar100 import get_cifar100_dataloaders, get_cifar100_dataloaders_sample
from distillers_icd_rrd.datasets.stl10 import get_stl10_dataloaders
from distillers_icd_rrd.datasets.tinyimagenet200 import get_tiny_imagenet_dataloaders

__all__ = [
    "get_cifar10_dataloaders",
    "get_cifar10_dataloaders_sample",
    "get_cifar100_dataloaders",
    "get_cifar100_dataloaders_sample",
    "get_stl10_dataloaders",
    "get_tiny_imagenet_dataloaders",
]
