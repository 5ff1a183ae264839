"""The seed's data loaders on tiny fake copies: items, CRD sampling, loader sizes and the exact transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from distillers_icd_rrd.datasets import (
    get_cifar10_dataloaders,
    get_cifar10_dataloaders_sample,
    get_cifar100_dataloaders,
    get_cifar100_dataloaders_sample,
    get_stl10_dataloaders,
    get_tiny_imagenet_dataloaders,
)
from distillers_icd_rrd.datasets.cifar100 import CIFAR100Instance, CIFAR100InstanceSample
from kdrepro_shared.data import write_cifar, write_fake_cifar, write_fake_stl10, write_fake_tiny_imagenet
from kdrepro_shared.errors import DatasetLayoutError

MEAN_100 = (0.5071, 0.4867, 0.4408)
STD_100 = (0.2675, 0.2565, 0.2761)


@pytest.fixture(scope="module")
def cifar100(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fake CIFAR-100 with 2 train images per class (200) and 1 test image per class (100)."""
    root = tmp_path_factory.mktemp("c100")
    write_fake_cifar(root, 100, n_train=200, n_test=100)
    return str(root)


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fake CIFAR-10 with 50 train and 20 test images."""
    root = tmp_path_factory.mktemp("c10")
    write_fake_cifar(root, 10, n_train=50, n_test=20)
    return str(root)


def test_instance_items_carry_their_index(cifar100: str) -> None:
    plain = CIFAR100Instance(cifar100, train=True, transform=transforms.ToTensor())
    img, target, index = plain[7]
    assert index == 7
    assert target == plain.targets[7] == 7
    assert torch.equal(img, transforms.ToTensor()(Image.fromarray(plain.data[7])))


def test_crd_exact_mode_positive_is_the_item_and_negatives_exclude_its_class(cifar100: str) -> None:
    dataset = CIFAR100InstanceSample(cifar100, k=16, mode="exact")
    np.random.seed(0)
    for index in (0, 57, 199):
        _, target, got_index, sample_idx = dataset[index]
        assert got_index == index
        assert sample_idx.shape == (17,)
        assert sample_idx[0] == index
        negatives = sample_idx[1:]
        assert len(set(negatives.tolist())) == 16  # k ≤ #negatives: drawn without replacement
        assert all(dataset.targets[i] != target for i in negatives)


def test_crd_relax_mode_positive_is_a_same_class_sample(cifar100: str) -> None:
    dataset = CIFAR100InstanceSample(cifar100, k=8, mode="relax")
    np.random.seed(1)
    for index in range(0, 200, 13):
        _, target, _, sample_idx = dataset[index]
        assert dataset.targets[sample_idx[0]] == target
        assert all(dataset.targets[i] != target for i in sample_idx[1:])


def test_crd_sampler_draws_like_the_seed_from_numpys_global_rng(cifar100: str) -> None:
    dataset = CIFAR100InstanceSample(cifar100, k=16, mode="relax")
    np.random.seed(0)
    got = dataset[0][3]
    np.random.seed(0)
    pos = np.random.choice(np.array([0, 100]), 1)[0]
    negatives = np.array([i for c in range(1, 100) for i in (c, c + 100)])  # the seed's class-by-class order
    assert got.tolist() == [pos, *np.random.choice(negatives, 16, replace=False).tolist()]


def test_crd_sampler_replaces_when_k_exceeds_the_negatives_and_keeps_a_percent(cifar100: str) -> None:
    dataset = CIFAR100InstanceSample(cifar100, k=500, mode="exact")
    assert dataset[3][3].shape == (501,)
    np.random.seed(0)
    half = CIFAR100InstanceSample(cifar100, k=4, percent=0.5)
    assert all(len(neg) == 99 for neg in half.cls_negative)


def test_crd_sampler_accepts_unbalanced_classes(tmp_path: Path) -> None:
    # The seed's np.asarray over per-class lists fails under numpy 2 when class sizes differ.
    rng = np.random.default_rng(0)
    labels = [0, 0, 0, *range(1, 100)]
    images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    write_cifar(tmp_path, images, labels, images[:100], list(range(100)))
    dataset = CIFAR100InstanceSample(str(tmp_path), k=4)
    assert len(dataset.cls_positive[0]) == 3
    assert dataset[0][3].shape == (5,)


def test_instance_loader_drops_the_last_batch_and_halves_the_test_batch(cifar100: str) -> None:
    train_loader, test_loader, n_data = get_cifar100_dataloaders(64, 0, is_instance=True, data_folder=cifar100)
    assert n_data == 200
    assert train_loader.drop_last and len(train_loader) == 3  # 200 // 64; 8 images dropped
    img, target, index = next(iter(train_loader))
    assert img.shape == (64, 3, 32, 32) and target.shape == index.shape == (64,)
    assert test_loader.batch_size == 32 and len(test_loader) == 4 and test_loader.num_workers == 0
    assert [len(b[1]) for b in test_loader] == [32, 32, 32, 4]
    plain_train, _ = get_cifar100_dataloaders(64, 0, data_folder=cifar100)
    assert len(next(iter(plain_train))) == 2


def test_sample_loader_keeps_the_last_batch(cifar100: str) -> None:
    train_loader, test_loader, n_data = get_cifar100_dataloaders_sample(64, 2, k=16, data_folder=cifar100)
    assert n_data == 200 and not train_loader.drop_last and len(train_loader) == 4
    assert test_loader.batch_size == 32 and test_loader.num_workers == 1
    train_loader, _, _ = get_cifar100_dataloaders_sample(64, 0, k=16, data_folder=cifar100)
    sizes = [(len(b[0]), tuple(b[3].shape)) for b in train_loader]
    assert sizes == [(64, (64, 17))] * 3 + [(8, (8, 17))]


def test_train_and_test_transforms_equal_torchvisions_pipeline(cifar100: str) -> None:
    train_loader, test_loader = get_cifar100_dataloaders(64, 0, data_folder=cifar100)
    reference_train = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN_100, STD_100),
        ]
    )
    image = Image.fromarray(train_loader.dataset.data[5])
    for seed in range(4):
        torch.manual_seed(seed)
        ours = train_loader.dataset[5][0]
        torch.manual_seed(seed)
        assert torch.equal(ours, reference_train(image))
    reference_test = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN_100, STD_100)])
    assert torch.equal(test_loader.dataset[3][0], reference_test(Image.fromarray(test_loader.dataset.data[3])))


def test_cifar10_uses_the_cifar100_constants_and_its_own_test_set(cifar10: str) -> None:
    train_loader, test_loader, n_data = get_cifar10_dataloaders(10, 0, is_instance=True, data_folder=cifar10)
    assert n_data == 50 and len(train_loader) == 5 and test_loader.batch_size == 5
    reference = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN_100, STD_100)])
    assert torch.equal(test_loader.dataset[0][0], reference(Image.fromarray(test_loader.dataset.data[0])))
    train_loader, test_loader, n_data = get_cifar10_dataloaders_sample(10, 0, k=8, data_folder=cifar10)
    _, target, _, sample_idx = train_loader.dataset[0]
    assert sample_idx.shape == (9,) and all(train_loader.dataset.targets[i] != target for i in sample_idx[1:])
    assert len(test_loader.dataset) == 20 and max(test_loader.dataset.targets) == 9


def test_transfer_loaders_resize_to_32(tmp_path: Path) -> None:
    write_fake_stl10(tmp_path)
    train_loader, test_loader = get_stl10_dataloaders(8, 0, data_folder=str(tmp_path))
    assert next(iter(train_loader))[0].shape == (8, 3, 32, 32)
    assert len(test_loader.dataset) == 10 and test_loader.batch_size == 4
    _, _, n_data = get_stl10_dataloaders(8, 0, is_instance=True, data_folder=str(tmp_path))
    assert n_data == 20
    write_fake_tiny_imagenet(tmp_path)
    train_loader, test_loader, n_data = get_tiny_imagenet_dataloaders(4, 0, is_instance=True, data_folder=str(tmp_path))
    img = next(iter(train_loader))[0]
    assert img.shape == (4, 3, 32, 32) and n_data == 12
    assert test_loader.dataset.classes == train_loader.dataset.classes
    assert next(iter(test_loader))[0].shape == (2, 3, 32, 32)


def test_missing_dataset_is_a_one_line_layout_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError) as err:
        get_cifar100_dataloaders(64, 0, data_folder=str(tmp_path))
    assert "cifar-100-python" in str(err.value) and "\n" not in str(err.value)
