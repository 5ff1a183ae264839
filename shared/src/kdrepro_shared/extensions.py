"""Loader for optional compiled ops: a prebuilt module, else a CUDA build on first use, else the pure-PyTorch path.

Nothing is compiled at install time; a build happens only when CUDA and nvcc are both present and sources are given.
"""

from __future__ import annotations

import importlib
import os
import types
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from kdrepro_shared.paths import kdrepro_home

_warned: set[str] = set()


class ExtensionFallbackWarning(UserWarning):
    """A compiled op is unavailable and its pure-PyTorch fallback is used (filter this category to silence it)."""


def extension_cache_dir(name: str) -> Path:
    """Where on-demand builds of extension `name` go: `$KDREPRO_HOME/extensions/<name>`, else the user cache."""
    return kdrepro_home() / "extensions" / name


def _nvcc_found() -> bool:
    """Whether torch located a CUDA toolkit whose `bin/nvcc` exists (CUDA_HOME may be a guess without one)."""
    from torch.utils.cpp_extension import CUDA_HOME  # noqa: PLC0415 -- importing it probes the toolkit

    return CUDA_HOME is not None and (Path(CUDA_HOME) / "bin" / "nvcc").is_file()


def _reason(err: BaseException, limit: int = 200) -> str:
    """One short line on why `err` happened: a compiler's first `error:` line if it has one, else its first line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    line = next((line for line in lines if "error:" in line.lower()), lines[0])
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _fall_back(name: str, reason: str) -> None:
    """Warn once per process per `name` that the pure-PyTorch path replaces op `name`, and why."""
    if name in _warned:
        return
    _warned.add(name)
    message = f"compiled op {name!r} unavailable ({reason}); using the pure-PyTorch path"
    warnings.warn(message, ExtensionFallbackWarning, stacklevel=3)


def load_extension(
    name: str,
    *,
    sources: Sequence[str | os.PathLike[str]] = (),
    build_dir: str | os.PathLike[str] | None = None,
    extra_cuda_cflags: Sequence[str] = (),
    verbose: bool = False,
) -> types.ModuleType | None:
    """Import the compiled op `name`, or build it from `sources` with `torch.utils.cpp_extension.load`, or None.

    The build needs CUDA and nvcc and goes to `build_dir` (default `extension_cache_dir(name)`); its module name is
    the last dotted part of `name` (the sources' `TORCH_EXTENSION_NAME`). On None the caller uses its fallback; one
    `ExtensionFallbackWarning` line per process says which op and why.
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        reason = f"no prebuilt module: {_reason(err)}"
    if not sources:
        _fall_back(name, reason)
        return None
    if not torch.cuda.is_available():
        _fall_back(name, "no CUDA device to build it for")
        return None
    if not _nvcc_found():
        _fall_back(name, "nvcc not found; set CUDA_HOME to a CUDA toolkit to build it")
        return None
    directory = Path(build_dir) if build_dir is not None else extension_cache_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    from torch.utils.cpp_extension import load  # noqa: PLC0415 -- only needed when building

    try:
        return load(
            name=name.rpartition(".")[2],
            sources=[str(source) for source in sources],
            extra_cuda_cflags=list(extra_cuda_cflags),
            build_directory=str(directory),
            verbose=verbose,
        )
    except Exception as err:  # any build or load failure means the fallback runs
        _fall_back(name, f"building it failed: {_reason(err)}")
        return None
