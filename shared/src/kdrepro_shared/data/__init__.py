"""Readers for the datasets several papers share, tiny writers in the same on-disk layouts, and embedded digits.

Readers never download or checksum: they check the layout and fail with one line naming it (`DatasetLayoutError`).
Writers never overwrite a non-empty folder (`DatasetExistsError`). ``python -m kdrepro_shared.data`` writes copies.
"""

from kdrepro_shared.data.cifar import CIFAR10, CIFAR10_FOLDER, CIFAR100, CIFAR100_FOLDER, write_cifar, write_fake_cifar
from kdrepro_shared.data.digits import (
    DIGITS_CLASSES,
    DIGITS_TEST_SIZE,
    DIGITS_TRAIN_SIZE,
    digits_arrays,
    write_digits_cifar100,
)
from kdrepro_shared.data.image_folder import ImageFolder, write_fake_image_folder, write_image_folder
from kdrepro_shared.data.stl10 import STL10, STL10_CLASSES, STL10_FOLDER, write_fake_stl10, write_stl10
from kdrepro_shared.data.tiny_imagenet import (
    TINY_IMAGENET_FOLDER,
    TinyImageNet,
    write_fake_tiny_imagenet,
    write_tiny_imagenet,
)
from kdrepro_shared.errors import DatasetExistsError, DatasetLayoutError

__all__ = [
    "CIFAR10",
    "CIFAR10_FOLDER",
    "CIFAR100",
    "CIFAR100_FOLDER",
    "DIGITS_CLASSES",
    "DIGITS_TEST_SIZE",
    "DIGITS_TRAIN_SIZE",
    "STL10",
    "STL10_CLASSES",
    "STL10_FOLDER",
    "TINY_IMAGENET_FOLDER",
    "DatasetExistsError",
    "DatasetLayoutError",
    "ImageFolder",
    "TinyImageNet",
    "digits_arrays",
    "write_cifar",
    "write_digits_cifar100",
    "write_fake_cifar",
    "write_fake_image_folder",
    "write_fake_stl10",
    "write_fake_tiny_imagenet",
    "write_image_folder",
    "write_stl10",
    "write_tiny_imagenet",
]
