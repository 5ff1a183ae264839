"""Tests of kdrepro_shared.device: device specs, the autocast flag, channels_last/compile, cuDNN and determinism."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from kdrepro_shared.device import (
    autocast,
    channels_last,
    maybe_compile,
    resolve_device,
    set_cudnn_policy,
    set_deterministic,
)
from kdrepro_shared.errors import KdReproError

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def restore_torch_flags() -> Iterator[None]:
    """Put back the global cuDNN/TF32/determinism flags a test changes."""
    saved = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
        torch.are_deterministic_algorithms_enabled(),
    )
    yield
    (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
        deterministic,
    ) = saved
    if torch.are_deterministic_algorithms_enabled() != deterministic:  # the call imports inductor: ~8 s on a cold CPU
        torch.use_deterministic_algorithms(deterministic)


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this machine has no CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this machine has two CUDA devices (only device specs are resolved, nothing runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_auto_follows_cuda_availability() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device().type == expected


@pytest.mark.usefixtures("no_cuda")
def test_auto_and_cpu_without_cuda() -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.usefixtures("no_cuda")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_one_line_error(spec: str) -> None:
    with pytest.raises(KdReproError, match="CUDA is not available") as info:
        resolve_device(spec)
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith("choose one of: auto, cpu")


@pytest.mark.usefixtures("two_gpus")
def test_cuda_index_in_and_out_of_range() -> None:
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(KdReproError, match=r"2 CUDA device\(s\); choose one of: auto, cpu, cuda, cuda:0, cuda:1$"):
        resolve_device("cuda:2")


def test_unknown_device_names_choices() -> None:
    with pytest.raises(KdReproError, match="'gpu': unknown device; choose one of: auto, cpu"):
        resolve_device("gpu")


def test_autocast_off_is_fp32() -> None:
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast("cpu"):
        assert (a @ b).dtype == torch.float32
    with autocast(torch.device("cpu"), "off"):
        assert (a @ b).dtype == torch.float32


def test_autocast_bf16_on_cpu() -> None:
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast("cpu", "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    assert (a @ b).dtype == torch.float32


def test_autocast_rejects_fp16_on_cpu_and_unknown_precision() -> None:
    with pytest.raises(KdReproError, match="'fp16' needs a CUDA device"):
        autocast("cpu", "fp16")
    with pytest.raises(KdReproError, match="precision 'fp32' is not one of: off, bf16, fp16"):
        autocast("cpu", "fp32")


def test_channels_last() -> None:
    model = nn.Conv2d(3, 8, 3)
    assert channels_last(model, enabled=False) is model
    assert not model.weight.is_contiguous(memory_format=torch.channels_last)
    assert channels_last(model, enabled=True) is model
    assert model.weight.is_contiguous(memory_format=torch.channels_last)


def test_maybe_compile_passes_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: calls.append((model, kwargs)) or "compiled")
    model = nn.Linear(4, 2)
    assert maybe_compile(model, enabled=False) is model
    assert not calls
    assert maybe_compile(model, enabled=True, mode="max-autotune") == "compiled"
    assert calls == [(model, {"mode": "max-autotune"})]


@pytest.mark.slow
def test_maybe_compile_runs() -> None:
    model = nn.Linear(4, 2)
    compiled = maybe_compile(model, enabled=True, backend="eager")
    assert compiled is not model
    x = torch.randn(3, 4)
    torch.testing.assert_close(compiled(x), model(x))


@pytest.mark.usefixtures("restore_torch_flags")
def test_set_cudnn_policy() -> None:
    set_cudnn_policy(benchmark=True, tf32=True)
    assert torch.backends.cudnn.benchmark
    assert torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cudnn.allow_tf32
    set_cudnn_policy(benchmark=False, tf32=False)
    assert not torch.backends.cudnn.benchmark
    assert not torch.backends.cuda.matmul.allow_tf32
    assert not torch.backends.cudnn.allow_tf32


@pytest.mark.usefixtures("restore_torch_flags")
def test_set_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    torch.backends.cudnn.benchmark = True
    set_deterministic()
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic


@pytest.mark.gpu
@needs_cuda
def test_cuda_device_and_autocast() -> None:
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    a = torch.randn(8, 8, device="cuda")
    with autocast("cuda", "fp16"):
        assert (a @ a).dtype == torch.float16
    with autocast("cuda:0", "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    assert (a @ a).dtype == torch.float32


@pytest.mark.gpu
@needs_cuda
@pytest.mark.usefixtures("restore_torch_flags")
def test_deterministic_cuda_matmul(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    set_deterministic()
    a = torch.randn(64, 64, device="cuda")
    torch.testing.assert_close(a @ a, a @ a, rtol=0, atol=0)
