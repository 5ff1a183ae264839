"""Load a config's `pretrained` file (a RepDistiller teacher, a k-means quantizer) into a freshly built network.

As in the original, the path may be a glob (the last match is used), the weights come from the file's `network`
entry or else its `model` entry, and they go into the full model before it is split. Unlike the original, the keys
must match exactly: it loaded mismatching files partially (`force=True` for the teachers), which silently left a
randomly initialised teacher; here any missing or unexpected key is a CheckpointError.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from torch import nn

from kdrepro_shared.checkpoints import load
from kdrepro_shared.errors import CheckpointError

TEACHER_FILE_NAME = "ckpt_epoch_240.pth"
DOWNLOAD_COMMAND = "python download_cifar100_teacher.py"
_SHOWN_KEYS = 5


def resolve_pretrained_path(pretrained_path: str | os.PathLike[str], missing_hint: str | None = None) -> Path:
    """The file a `pretrained` entry names: the path itself, else the last (sorted) match of it as a glob pattern.

    Relative paths are relative to the working directory, as the configs assume. No match raises a one-line
    CheckpointError ending with `missing_hint`, or for a RepDistiller teacher file the download command.
    """
    path = Path(pretrained_path)
    if path.is_file():
        return path
    matches = sorted(glob.glob(os.fspath(path)))  # noqa: PTH207 - the wildcard may sit in any path part
    if matches:
        return Path(matches[-1])
    if missing_hint is None and path.name == TEACHER_FILE_NAME:
        missing_hint = (
            f"download the CIFAR-100 teachers with `{DOWNLOAD_COMMAND}` run in {Path.cwd()} "
            f"(it writes ./saved_models/<arch>_vanilla/{TEACHER_FILE_NAME})"
        )
    message = f"pretrained file {os.fspath(path)} not found (relative to {Path.cwd()})"
    raise CheckpointError(f"{message}: {missing_hint}" if missing_hint else message)


def _key_list(keys: list[str]) -> str:
    """The first few keys and how many there are in all, for a one-line message."""
    if not keys:
        return "none"
    shown = ", ".join(keys[:_SHOWN_KEYS])
    return f"{len(keys)} ({shown}{', …' if len(keys) > _SHOWN_KEYS else ''})"


def load_pretrained(
    network: nn.Module,
    pretrained_path: str | os.PathLike[str],
    *,
    force: bool = False,
    missing_hint: str | None = None,
) -> Path:
    """Load the weights a `pretrained` entry names into `network` (the full, unsplit model) with strict keys.

    `force` is the config entry's flag; the original used it to accept a partial load, which is refused here
    whatever its value (it only changes the error's wording). `missing_hint` is appended to the error when no file
    matches. The file is read with `weights_only=True` on CPU. Returns the file that was loaded, for logging.
    """
    path = resolve_pretrained_path(pretrained_path, missing_hint)
    checkpoint = load(path, map_location="cpu")
    entry = "network" if isinstance(checkpoint, dict) and "network" in checkpoint else "model"
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get(entry), dict):
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path} holds no 'network' or 'model' state_dict (found {found})")
    state = checkpoint[entry]
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        partial = " (the original's force=True would have loaded it partially)" if force else ""
        raise CheckpointError(
            f"{path} does not fit {type(network).__name__}{partial}: missing keys {_key_list(missing)}, "
            f"unexpected keys {_key_list(unexpected)}"
        )
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape
    ]
    if wrong:
        name = type(network).__name__
        raise CheckpointError(
            f"{path} does not fit {name}: {len(wrong)} shape mismatches (file vs model), first {wrong[0]}"
        )
    network.load_state_dict(state, strict=True)
    return path
