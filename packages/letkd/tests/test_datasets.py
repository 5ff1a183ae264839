"""CIFAR datasets and loaders: the original transforms and items on a tiny on-disk copy, offline, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import transforms

from kdrepro_shared.data import write_cifar
from kdrepro_shared.errors import DatasetLayoutError, KdReproError
from letkd.distillation.dataloaders.basic_dataloaders import (
    BalancedBatchSampler,
    DataloaderSampler,
    SimpleDataloader,
    generate_element_list,
)
from letkd.distillation.datasets import dataset_factory
from letkd.distillation.datasets.cifar_dataset import _CIFAR_MEAN_PIXEL, _CIFAR_STD_PIXEL

NORMALIZE = transforms.Normalize(mean=[0.5071, 0.4867, 0.4408], std=[0.2675, 0.2565, 0.2761])


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    """A 40-train / 20-test CIFAR-100 copy in the python-pickle layout (md5s differ from the real files)."""
    rs = np.random.RandomState(0)
    images_train = rs.randint(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    images_test = rs.randint(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    write_cifar(tmp_path, images_train, [i % 100 for i in range(40)], images_test, [i % 100 for i in range(20)])
    return tmp_path


def test_val_split_is_the_test_set_with_plain_normalisation(cifar_root: Path) -> None:
    val = dataset_factory("CIFAR100", split="val", data_dir=str(cifar_root))
    assert (val.name, len(val)) == ("CIFAR100_val", 20)
    image, label = val[3]
    expected = NORMALIZE(transforms.functional.to_tensor(val.images[3]))
    torch.testing.assert_close(image, expected)
    assert label == 3


def test_train_split_uses_reflect_padded_crops_then_flip(cifar_root: Path) -> None:
    train = dataset_factory("CIFAR100", split="train", data_dir=str(cifar_root))
    reference = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4, padding_mode="reflect"),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            NORMALIZE,
        ]
    )
    from PIL import Image

    for index in range(5):
        torch.manual_seed(index)
        ours, _ = train[index]
        torch.manual_seed(index)
        torch.testing.assert_close(ours, reference(Image.fromarray(train.images[index])))
    assert (_CIFAR_MEAN_PIXEL, _CIFAR_STD_PIXEL) == ([0.5071, 0.4867, 0.4408], [0.2675, 0.2565, 0.2761])


def test_offline_steps_use_the_test_transform_on_train_images(cifar_root: Path) -> None:
    train = dataset_factory("CIFAR100", split="train", data_dir=str(cifar_root), do_not_use_random_transf=True)
    torch.testing.assert_close(train[0][0], NORMALIZE(transforms.functional.to_tensor(train.images[0])))


def test_cifar10_uses_the_cifar100_statistics(tmp_path: Path) -> None:
    rs = np.random.RandomState(1)
    write_cifar(
        tmp_path,
        rs.randint(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        list(range(10)),
        rs.randint(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        list(range(10)),
        num_classes=10,
    )
    val = dataset_factory("CIFAR10", split="val", data_dir=str(tmp_path))
    torch.testing.assert_close(val[0][0], NORMALIZE(transforms.functional.to_tensor(val.images[0])))


def test_wrong_data_dir_names_the_layout_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError) as err:
        dataset_factory("CIFAR100", split="val", data_dir=str(tmp_path / "nowhere"))
    assert "cifar-100-python/{train,test,meta}" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_dataset_and_split_are_one_line_errors(cifar_root: Path) -> None:
    with pytest.raises(KdReproError, match="expected one of CIFAR100, CIFAR10"):
        dataset_factory("ImageNet", split="train")
    with pytest.raises(DatasetLayoutError, match="'train' or 'val'"):
        dataset_factory("CIFAR100", split="test", data_dir=str(cifar_root))


def test_simple_dataloader_epoch_and_subset(cifar_root: Path) -> None:
    train = dataset_factory("CIFAR100", split="train", data_dir=str(cifar_root))
    loader = SimpleDataloader(train, batch_size=8, train=True, num_workers=0)
    assert len(loader) == 5
    assert sum(1 for _ in loader(0)) == 5
    subset = SimpleDataloader(train, batch_size=8, train=True, num_workers=0, epoch_size=20)
    assert len(subset) == 2 and sum(1 for _ in subset()) == 2  # drop_last in training
    test = SimpleDataloader(train, batch_size=16, train=False, num_workers=0)
    assert [len(batch[1]) for batch in test()] == [16, 16, 8]


def test_generate_element_list_tiles_and_subsamples() -> None:
    np.random.seed(0)
    assert generate_element_list(5, 5) == [0, 1, 2, 3, 4]
    subset = generate_element_list(3, 10)
    assert len(set(subset)) == 3
    tiled = generate_element_list(12, 5)
    assert tiled[:10] == [0, 1, 2, 3, 4] * 2 and len(set(tiled[10:])) == 2


def test_balanced_batch_sampler_and_dataloader_sampler() -> None:
    labels = torch.arange(40) % 4
    dataset = torch.utils.data.TensorDataset(torch.zeros(40, 1), labels)
    np.random.seed(0)
    sampler = BalancedBatchSampler(dataset, n_classes=2, n_samples=3)
    batches = list(sampler)
    assert len(sampler) == 6 and len(batches) == 6
    for batch in batches:
        assert len(batch) == 6 and len({int(labels[i]) for i in batch}) == 2
    dataset.sampler = torch.utils.data.SequentialSampler(dataset)
    loader = DataloaderSampler(dataset, batch_size=8, train=True, num_workers=0)
    assert len(loader) == 5 and sum(1 for _ in loader()) == 5
