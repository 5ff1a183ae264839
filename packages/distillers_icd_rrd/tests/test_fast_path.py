"""The opt-in fast path: the GPU-resident loader equals torchvision's pipeline, fp32 islands, and short runs.

CPU tests run the loader and bf16 autocast on the CPU; `gpu` tests repeat them on CUDA (skipped without one).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from distillers_icd_rrd import train_student
from distillers_icd_rrd.datasets._common import cifar_train_transform
from distillers_icd_rrd.datasets.cifar100 import CIFAR100Instance, CIFAR100InstanceSample
from distillers_icd_rrd.datasets.gpu_loader import GpuCifarLoader, augment, draw_augment
from distillers_icd_rrd.distillers import FSP, KDSVD, Correlation, DistillKL, RKDLoss, Similarity
from distillers_icd_rrd.models import model_dict
from kdrepro_shared.data import CIFAR100, write_fake_cifar

TEACHER = "save/models/resnet8_vanilla/ckpt_epoch_240.pth"
FAST = ["--epochs", "1", "--num_workers", "0", "--batch_size", "16", "--print_freq", "1000", "--nce_k", "32"]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """One intra-op thread, as in the other script tests."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def cifar100(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fake CIFAR-100 with 100 train and 20 test images."""
    root = tmp_path_factory.mktemp("c100")
    write_fake_cifar(root, 100, n_train=100, n_test=20)
    return str(root)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CWD with the fake CIFAR-100 in ./data and a random resnet8 teacher."""
    monkeypatch.chdir(tmp_path)
    write_fake_cifar(tmp_path / "data", 100, n_train=100, n_test=20)
    torch.manual_seed(0)
    (tmp_path / TEACHER).parent.mkdir(parents=True)
    torch.save({"model": model_dict["resnet8"](num_classes=100).state_dict()}, tmp_path / TEACHER)
    return tmp_path


def _torchvision_batch(data: np.ndarray, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The seed's transform image by image, and the (offsets, flips) it drew (RandomCrop: top, left; then the flip)."""
    transform = cifar_train_transform()
    torch.manual_seed(seed)
    expected = torch.stack([transform(Image.fromarray(image)) for image in data])
    torch.manual_seed(seed)
    offsets, flips = [], []
    for _ in data:
        offsets.append([int(torch.randint(0, 9, size=(1,))), int(torch.randint(0, 9, size=(1,)))])
        flips.append(bool(torch.rand(1) < 0.5))
    return expected, torch.tensor(offsets), torch.tensor(flips)


def test_augment_equals_torchvision_image_by_image(cifar100: str) -> None:
    data = CIFAR100(cifar100, train=True).data[:64]
    expected, offsets, flips = _torchvision_batch(data, seed=3)
    assert flips.any() and (~flips).any() and (offsets == 0).any() and (offsets == 8).any()
    images = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()
    got = augment(images, offsets, flips)
    assert got.dtype == torch.float32 and torch.equal(got, expected)


def test_gpu_loader_items_order_and_drop_last_match_the_seed(cifar100: str) -> None:
    dataset = CIFAR100Instance(cifar100, train=True)
    loader = GpuCifarLoader(dataset, 16, device=torch.device("cpu"), drop_last=True)
    torch.manual_seed(5)
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    torch.manual_seed(5)
    batches = list(loader)
    assert len(batches) == len(loader) == 100 // 16
    generator = torch.Generator().manual_seed(seed)
    seen = torch.cat([batch[2] for batch in batches])
    assert len(seen.unique()) == 96 and not torch.equal(seen, torch.arange(96))
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2)
    for img, target, index in batches:
        assert target.tolist() == [dataset.targets[i] for i in index]
        assert torch.equal(img, augment(images[index], *draw_augment(16, generator)))
    torch.manual_seed(5)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, loader, strict=True))


def test_gpu_loader_crd_items_keep_the_last_batch_and_sample_like_the_seed(cifar100: str) -> None:
    dataset = CIFAR100InstanceSample(cifar100, train=True, k=8, mode="exact")
    loader = GpuCifarLoader(dataset, 16, device=torch.device("cpu"), drop_last=False, channels_last=True)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [16] * 6 + [4]
    img, target, index, contrast_idx = batches[0]
    assert img.is_contiguous(memory_format=torch.channels_last) and contrast_idx.shape == (16, 9)
    assert torch.equal(contrast_idx[:, 0], index)
    assert all(dataset.targets[n] != t for row, t in zip(contrast_idx[:, 1:], target, strict=True) for n in row)
    plain = GpuCifarLoader(CIFAR100(cifar100, train=True), 32, device=torch.device("cpu"), drop_last=True)
    assert [len(item) for item in plain] == [2, 2, 2]


@pytest.mark.parametrize(
    ("criterion", "args"),
    [
        (DistillKL(4), (torch.randn(8, 10), torch.randn(8, 10))),
        (Similarity(), ([torch.randn(8, 4, 4, 4)], [torch.randn(8, 4, 4, 4)])),
        (RKDLoss(), (torch.randn(8, 6), torch.randn(8, 6))),
        (Correlation(), (torch.randn(8, 6), torch.randn(8, 6))),
        (KDSVD(), ([torch.randn(4, 6, 4, 4), torch.randn(4, 6, 4, 4)], [torch.randn(4, 6, 4, 4)] * 2)),
        (FSP([(1, 4, 4, 4)] * 2, [(1, 4, 4, 4)] * 2), ([torch.randn(4, 4, 4, 4)] * 2, [torch.randn(4, 4, 4, 4)] * 2)),
    ],
)
def test_fp32_islands_ignore_autocast(criterion: torch.nn.Module, args: tuple[Any, ...]) -> None:
    def cast(value: Any) -> Any:
        return [cast(v) for v in value] if isinstance(value, list) else value.bfloat16()

    low = tuple(cast(a) for a in args)
    reference = criterion(*(_float(a) for a in low))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = criterion(*low)
    pairs = zip(*(v if isinstance(v, list) else [v] for v in (reference, got)), strict=True)
    assert all(g.dtype == torch.float32 and torch.equal(g, r) for r, g in pairs)


def _float(value: Any) -> Any:
    """bf16 tensors (or lists of them) back to float32."""
    return [_float(v) for v in value] if isinstance(value, list) else value.float()


def _run(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> list[tuple[Any, Any]]:
    """Run train_student.main and return the (train_acc, train_loss) of each epoch."""
    results = []
    original = train_student.train_distill

    def recording(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        results.append(original(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(train_student, "train_distill", recording)
    train_student.main(argv)
    return results


@pytest.mark.parametrize(("method", "extra"), [("kd", []), ("crd", ["--gpu_loader"]), ("rrd", ["--gpu_loader"])])
def test_channels_last_bf16_epoch_on_cpu_is_finite(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, method: str, extra: list[str]
) -> None:
    argv = ["--path_t", TEACHER, "--distill", method, "-a", "1", "-b", "1", "--device", "cpu", *FAST]
    [(acc, loss)] = _run(monkeypatch, [*argv, "--channels_last", "--precision", "bf16", *extra])
    assert math.isfinite(loss) and math.isfinite(float(acc))
    assert list((workdir / "save/student/student_model").glob("*/resnet8_last.pth"))


def test_fast_path_flags_default_to_the_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    opt = train_student.parse_option(["--path_t", TEACHER, "-a", "0", "-b", "1"])
    flags = ("device", "gpu_loader", "channels_last", "precision", "compile", "distributed")
    assert [getattr(opt, k) for k in flags] == ["auto", False, False, "off", False, False]


@pytest.mark.gpu
@CUDA
def test_augment_on_cuda_equals_cpu(cifar100: str) -> None:
    data = CIFAR100(cifar100, train=True).data[:64]
    expected, offsets, flips = _torchvision_batch(data, seed=4)
    images = torch.from_numpy(data).permute(0, 3, 1, 2).cuda()
    assert torch.equal(augment(images, offsets.cuda(), flips.cuda()).cpu(), expected)


@pytest.mark.gpu
@CUDA
@pytest.mark.parametrize(
    ("method", "flags"),
    [
        ("kd", ["--precision", "bf16", "--compile"]),
        ("crd", ["--precision", "fp16"]),
        ("icd", ["--precision", "bf16"]),
        ("rrd", ["--precision", "bf16", "--compile"]),
    ],
)
def test_fast_path_epoch_on_cuda(workdir: Path, monkeypatch: pytest.MonkeyPatch, method: str, flags: list[str]) -> None:
    argv = ["--path_t", TEACHER, "--distill", method, "-a", "1", "-b", "1", "--device", "cuda", *FAST]
    [(acc, loss)] = _run(monkeypatch, [*argv, "--gpu_loader", "--channels_last", *flags])
    assert math.isfinite(loss) and math.isfinite(float(acc))
