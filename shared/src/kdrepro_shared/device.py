"""Device selection and the opt-in speed/precision switches (autocast, channels_last, compile, cuDNN, determinism).

Every switch defaults to the originals' behaviour (fp32, no compile, default cuDNN), so turning one on is explicit.
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from kdrepro_shared.errors import KdReproError

PRECISIONS: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _cuda_choices() -> list[str]:
    """The CUDA device specs valid on this machine (empty without CUDA)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cuda", *(f"cuda:{index}" for index in range(count))] if count else []


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn `auto|cpu|cuda|cuda:N` into a `torch.device`; `auto` is CUDA when available, else CPU.

    A CUDA spec on a machine without CUDA, or an index past the last GPU, raises a one-line `KdReproError`.
    """
    text = str(spec).strip().lower()
    if text == "cpu":  # before any CUDA query, so CPU-only workers forked from a CUDA process stay safe
        return torch.device("cpu")
    cuda = _cuda_choices()
    if text == "auto":
        return torch.device("cuda" if cuda else "cpu")
    if text in cuda:
        return torch.device(text)
    choices = ", ".join(["auto", "cpu", *cuda])
    if not text.startswith("cuda"):
        reason = "unknown device"
    elif cuda:
        reason = f"this machine has {len(cuda) - 1} CUDA device(s)"
    else:
        reason = "CUDA is not available on this machine"
    raise KdReproError(f"device {str(spec)!r}: {reason}; choose one of: {choices}")


def autocast(device: str | torch.device, precision: str = "off") -> contextlib.AbstractContextManager[None]:
    """A context that runs its block in mixed precision per the `precision` flag: `off` (default, fp32), `bf16`, `fp16`.

    `off` is a no-op. `bf16` autocasts on CUDA, and on CPU too when asked for (PyTorch supports CPU bf16 autocast,
    though without AMX it is usually slower than fp32). `fp16` is CUDA-only (train it with a `torch.amp.GradScaler`).
    Anything else raises a one-line error.
    """
    if precision not in PRECISIONS:
        raise KdReproError(f"precision {precision!r} is not one of: {', '.join(PRECISIONS)}")
    device = torch.device(device)
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    if dtype is torch.float16 and device.type != "cuda":
        raise KdReproError(f"precision 'fp16' needs a CUDA device, got {str(device)!r}; use 'bf16' or 'off'")
    return torch.autocast(device_type=device.type, dtype=dtype)


def channels_last(model: nn.Module, enabled: bool) -> nn.Module:
    """Convert `model`'s 4-D parameters to channels_last memory format when `enabled` (faster convs on tensor cores)."""
    return model.to(memory_format=torch.channels_last) if enabled else model


def maybe_compile(model: nn.Module, enabled: bool, **kwargs: object) -> nn.Module:
    """Return `torch.compile(model, **kwargs)` when `enabled`, else `model` unchanged (compilation is opt-in)."""
    return torch.compile(model, **kwargs) if enabled else model


def set_cudnn_policy(benchmark: bool, tf32: bool) -> None:
    """Set cuDNN autotuning (`benchmark`) and whether fp32 matmuls/convolutions may use TF32 on Ampere+ GPUs."""
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def set_deterministic(enabled: bool = True) -> None:
    """Make PyTorch pick deterministic kernels (erroring on ops that have none) and turn cuDNN autotuning off.

    Also sets `CUBLAS_WORKSPACE_CONFIG=:4096:8` (unless already set), which cuBLAS reads when its first handle is
    created: call this before any CUDA work. Disabling only turns off the deterministic switches.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
