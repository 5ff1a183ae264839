"""Locating and reading the released teacher / PCA files under `--path_to_pretrained_weights`.

A missing file is a one-line error naming the file and the `kdrepro_shared.checkpoints fetch` command that places it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from kdrepro_shared.checkpoints import load
from kdrepro_shared.errors import CheckpointError

__all__ = ["PathLike", "fetch_command", "load_weight_file", "weight_file"]

PathLike = str | os.PathLike[str]


def fetch_command(artifact: str, dest_dir: Path) -> str:
    """The shell command that puts a registered whiten_mtd artifact into `dest_dir`."""
    return f"python -m kdrepro_shared.checkpoints fetch {artifact} --dest-dir {dest_dir}"


def weight_file(path: Path, artifact: str | None, hint: str = "") -> Path:
    """Return `path` if it is a file; else raise a one-line CheckpointError saying how to get it."""
    if path.is_file():
        return path
    if artifact is not None:
        how = f"get it with `{fetch_command(artifact, path.parent)}`"
    else:
        how = hint or "no released file has this name"
    raise CheckpointError(f"weight file {path} not found; {how}")


def load_weight_file(path: Path, kind: str) -> Any:
    """Load a released file with `weights_only=True`; if it pickles Python objects, warn and load it as trusted.

    These are the authors' files that the user placed by hand (spec: try weights_only first, then fall back).
    """
    try:
        return load(path)
    except CheckpointError as err:
        if "holds Python objects" not in str(err):
            raise
        warnings.warn(f"{path} holds pickled Python objects; loading it as a trusted {kind}", stacklevel=2)
        return load(path, weights_only=False, trusted_legacy=kind)
