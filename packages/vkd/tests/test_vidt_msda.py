"""Multi-scale deformable attention: the pure-PyTorch path vs the original's reference, and CUDA op vs PyTorch path."""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import pytest
import torch

from kdrepro_shared.errors import KdReproError
from vkd.vidt.ops import MSDeformAttn, compiled_op, ms_deform_attn, ms_deform_attn_core_pytorch
from vkd.vidt.testing import fill_detector

FIXTURES = Path(__file__).parent / "fixtures" / "vidt_models"


@pytest.fixture(scope="module")
def ref() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURES / "msda.pt")


@pytest.mark.parity
def test_pytorch_path_and_its_gradients_match_original(ref) -> None:
    value = ref["value"].clone().requires_grad_()
    loc = ref["loc"].clone().requires_grad_()
    weights = ref["weights"].clone().requires_grad_()
    out = ms_deform_attn_core_pytorch(value, ref["shapes"], loc, weights)
    torch.testing.assert_close(out, ref["out"], rtol=0, atol=1e-10)
    out.backward(ref["grad_out"])
    for name, tensor in (("value", value), ("loc", loc), ("weights", weights)):
        torch.testing.assert_close(tensor.grad, ref[f"grad_{name}"], rtol=0, atol=1e-10, msg=name)


@pytest.mark.parity
@pytest.mark.parametrize("ref_dim", [2, 4])
def test_module_matches_original_for_points_and_boxes(ref, ref_dim) -> None:
    module = fill_detector(MSDeformAttn(32, 3, 4, 2)).double()
    with torch.no_grad():
        out = module(ref["query"], ref[f"ref{ref_dim}"], ref["src"], ref["shapes"], ref["starts"], ref["pad"])
    torch.testing.assert_close(out, ref[f"module_out{ref_dim}"], rtol=0, atol=1e-10)


def test_cpu_dispatch_uses_pytorch_path_silently(ref) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ms_deform_attn(ref["value"], ref["shapes"], ref["starts"], ref["loc"], ref["weights"])
    torch.testing.assert_close(out, ref["out"], rtol=0, atol=1e-10)


def test_backend_choice_is_validated(ref, monkeypatch) -> None:
    args = (ref["value"], ref["shapes"], ref["starts"], ref["loc"], ref["weights"])
    with pytest.raises(KdReproError, match="CUDA"):
        ms_deform_attn(*args, backend="cuda")
    monkeypatch.setenv("VKD_MSDA_BACKEND", "triton")
    with pytest.raises(KdReproError, match="auto, pytorch, cuda"):
        ms_deform_attn(*args)


def test_module_rejects_bad_reference_shape(ref) -> None:
    module = MSDeformAttn(32, 3, 4, 2).double()
    with pytest.raises(ValueError, match="2 or 4"):
        module(ref["query"], ref["ref2"][..., :1], ref["src"], ref["shapes"], ref["starts"])


def test_cuda_sources_ship_as_package_data() -> None:
    src = resources.files("vkd.vidt.ops") / "src"
    assert {"ms_deform_attn.cpp", "ms_deform_attn_cuda.cu"} <= {p.name for p in src.iterdir()}


def _random_inputs(dtype: torch.dtype, device: str) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(3)
    shapes = torch.tensor([[16, 20], [8, 10], [4, 5], [2, 3]])
    starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    length = int(shapes.prod(1).sum())
    value = torch.randn(2, length, 8, 32, generator=g, dtype=dtype)
    loc = torch.rand(2, 100, 8, 4, 4, 2, generator=g, dtype=dtype) * 1.2 - 0.1
    weights = torch.rand(2, 100, 8, 4, 4, generator=g, dtype=dtype) + 1e-5
    weights = weights / weights.sum((-1, -2), keepdim=True)
    return tuple(t.to(device) for t in (value, shapes, starts, loc, weights))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
# float32 tolerances of Deformable-DETR's own op test (atomics reorder the sums)
@pytest.mark.parametrize(("dtype", "rtol", "atol"), [(torch.float64, 1e-10, 1e-9), (torch.float32, 1e-2, 1e-3)])
def test_compiled_op_matches_pytorch_path_on_cuda(dtype, rtol, atol) -> None:
    if compiled_op() is None:
        pytest.skip("the CUDA op could not be built here (no nvcc)")
    results = {}
    for backend in ("cuda", "pytorch"):
        value, shapes, starts, loc, weights = _random_inputs(dtype, "cuda")
        leaves = [t.requires_grad_() for t in (value, loc, weights)]
        out = ms_deform_attn(value, shapes, starts, loc, weights, im2col_step=1, backend=backend)
        out.backward(torch.ones_like(out) * 0.1)
        results[backend] = [out.detach(), *(leaf.grad for leaf in leaves)]
    for name, a, b in zip(("out", "grad_value", "grad_loc", "grad_weights"), *results.values(), strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=name)
