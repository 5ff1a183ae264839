"""Tests of kdrepro_shared.extensions: prebuilt import, on-demand CUDA build, and the one-warning fallback."""

from __future__ import annotations

import types
import uuid
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils import cpp_extension

from kdrepro_shared import extensions
from kdrepro_shared.extensions import ExtensionFallbackWarning, extension_cache_dir, load_extension

AXPY_CU = r"""
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>

__global__ void axpy_kernel(const float* x, const float* y, float* out, float a, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = a * x[i] + y[i];
}

torch::Tensor axpy(torch::Tensor x, torch::Tensor y, double a) {
  TORCH_CHECK(x.is_cuda() && x.is_contiguous() && x.scalar_type() == torch::kFloat, "x: contiguous float CUDA");
  TORCH_CHECK(y.sizes() == x.sizes() && y.is_cuda() && y.is_contiguous(), "y: like x");
  auto out = torch::empty_like(x);
  int64_t n = x.numel();
  int threads = 256;
  int blocks = static_cast<int>((n + threads - 1) / threads);
  axpy_kernel<<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      x.data_ptr<float>(), y.data_ptr<float>(), out.data_ptr<float>(), static_cast<float>(a), n);
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("axpy", &axpy, "a * x + y"); }
"""


def _unique_name() -> str:
    """A module name nothing can import, fresh per test so the once-per-name warning state does not leak."""
    return f"kdrepro_missing_op_{uuid.uuid4().hex}"


def _load_recording(name: str, **kwargs: object) -> tuple[types.ModuleType | None, list[str]]:
    """Call `load_extension` and return its result and the fallback warnings' messages."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = load_extension(name, **kwargs)
    return module, [str(w.message) for w in caught if issubclass(w.category, ExtensionFallbackWarning)]


@pytest.fixture
def fake_toolkit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Pretend CUDA is available and a toolkit with nvcc lives in tmp_path (no build can really run)."""
    nvcc = tmp_path / "cuda" / "bin" / "nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.touch()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(cpp_extension, "CUDA_HOME", str(tmp_path / "cuda"))


def test_prebuilt_module_is_returned() -> None:
    module, messages = _load_recording("json")
    assert module is not None
    assert module.__name__ == "json"
    assert messages == []


def test_missing_module_warns_once_and_returns_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    name = _unique_name()
    module, messages = _load_recording(name)
    assert module is None
    assert len(messages) == 1
    assert "\n" not in messages[0]
    assert name in messages[0]
    assert "no prebuilt module" in messages[0]
    assert messages[0].endswith("using the pure-PyTorch path")
    module, messages = _load_recording(name)
    assert module is None
    assert messages == []


def test_sources_without_cuda_fall_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(cpp_extension, "load", pytest.fail)
    module, messages = _load_recording(_unique_name(), sources=[tmp_path / "op.cu"])
    assert module is None
    assert len(messages) == 1
    assert "no CUDA device" in messages[0]


def test_sources_without_nvcc_fall_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(cpp_extension, "CUDA_HOME", str(tmp_path))  # a CUDA_HOME without bin/nvcc
    monkeypatch.setattr(cpp_extension, "load", pytest.fail)
    module, messages = _load_recording(_unique_name(), sources=[tmp_path / "op.cu"])
    assert module is None
    assert len(messages) == 1
    assert "nvcc not found" in messages[0]


@pytest.mark.usefixtures("fake_toolkit")
def test_build_goes_to_kdrepro_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KDREPRO_HOME", str(tmp_path / "home"))
    built = types.ModuleType("op")
    calls = []
    monkeypatch.setattr(cpp_extension, "load", lambda **kwargs: calls.append(kwargs) or built)
    name = f"pkg.{_unique_name()}"
    module, messages = _load_recording(name, sources=[tmp_path / "op.cu"], extra_cuda_cflags=["-O3"], verbose=True)
    assert module is built
    assert messages == []
    build_dir = tmp_path / "home" / "extensions" / name
    assert extension_cache_dir(name) == build_dir
    assert build_dir.is_dir()
    assert calls == [
        {
            "name": name.rpartition(".")[2],
            "sources": [str(tmp_path / "op.cu")],
            "extra_cuda_cflags": ["-O3"],
            "build_directory": str(build_dir),
            "verbose": True,
        }
    ]


def test_cache_dir_without_kdrepro_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KDREPRO_HOME", raising=False)
    assert extension_cache_dir("op").parts[-2:] == ("extensions", "op")
    assert "kdrepro" in extension_cache_dir("op").parts


@pytest.mark.usefixtures("fake_toolkit")
def test_build_failure_warns_once_with_compiler_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def failing_load(**kwargs: object) -> None:
        log = "[1/2] nvcc -c op.cu\nop.cu(3): error: identifier x\n" + "-" * 300
        raise RuntimeError(f"Error building extension 'op': {log}")

    monkeypatch.setattr(cpp_extension, "load", failing_load)
    name = _unique_name()
    module, messages = _load_recording(name, sources=[tmp_path / "op.cu"], build_dir=tmp_path / "build")
    assert module is None
    assert messages == [
        f"compiled op {name!r} unavailable (building it failed: op.cu(3): error: identifier x); "
        "using the pure-PyTorch path"
    ]
    assert _load_recording(name, sources=[tmp_path / "op.cu"], build_dir=tmp_path / "build") == (None, [])
    assert name in extensions._warned


def test_reason_is_one_short_line() -> None:
    assert extensions._reason(RuntimeError("x" * 500)) == "x" * 197 + "..."
    assert extensions._reason(RuntimeError("\n\n")) == "RuntimeError"
    assert extensions._reason(ImportError("No module named 'op'")) == "No module named 'op'"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.skipif(not extensions._nvcc_found(), reason="needs nvcc (CUDA_HOME/bin/nvcc)")
@pytest.mark.skipif(not cpp_extension.is_ninja_available(), reason="torch's extension builds need ninja")
def test_builds_real_cuda_extension(tmp_path: Path) -> None:
    source = tmp_path / "axpy.cu"
    source.write_text(AXPY_CU)
    name = f"kdrepro_test_axpy_{uuid.uuid4().hex[:8]}"
    module, messages = _load_recording(name, sources=[source], build_dir=tmp_path / "build")
    assert messages == []
    assert module is not None
    x = torch.randn(1000, device="cuda")
    y = torch.randn(1000, device="cuda")
    torch.testing.assert_close(module.axpy(x, y, 2.5), 2.5 * x + y)
