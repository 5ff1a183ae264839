"""Checkpoint save and load: atomic writes with a provenance block, and loads whose failures are one line.

`save` never leaves a half-written file under the target name, so a run killed mid-save still resumes from
the previous checkpoint. `load` defaults to `weights_only=True`; the originals' checkpoints that pickle
Python objects load only when the caller names them as a trusted legacy kind.
"""

from __future__ import annotations

import copy
import os
import pickle
import re
import secrets
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from kdrepro_shared.errors import CheckpointError
from kdrepro_shared.plain import args_to_dict

SCHEMA_VERSION = 1
META_KEY = "kdrepro_meta"

_GIT_TIMEOUT_S = 2.0
_HEAD_BYTES = 32
_ZIP_HEAD = b"PK\x03\x04"
# Legacy (pre-zip) torch files open with pickle's PROTO opcode, then torch's magic number pickled as LONG1.
_LEGACY_MAGIC = b"\x8a\x0a" + torch.serialization.MAGIC_NUMBER.to_bytes(10, "little")
_BLOCKED_GLOBAL = re.compile(r"GLOBAL ([\w.]+) was not an allowed global")
_WEIGHTS_ONLY_REASON = re.compile(r"WeightsUnpickler error:\s*(.+)")
_ENFORCE_PREFIX = re.compile(r"^\[enforce fail at [^\]]*\][\s.]*")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_MAX_REASON_CHARS = 200

PathLike = str | os.PathLike[str]


def load(
    path: PathLike,
    *,
    weights_only: bool = True,
    map_location: Any = "cpu",
    trusted_legacy: str | None = None,
) -> Any:
    """Return what `torch.load` reads from `path`; any failure becomes a one-line `CheckpointError` naming the file.

    `weights_only=False` unpickles arbitrary code, so it needs `trusted_legacy` naming the file kind being trusted,
    e.g. "RepDistiller *_last.pth (holds argparse.Namespace)".
    """
    if not weights_only and not (trusted_legacy and trusted_legacy.strip()):
        raise ValueError(
            "load(weights_only=False) can run arbitrary code from the file; pass trusted_legacy='<the trusted legacy "
            "file kind>' to say which original checkpoint format this is"
        )
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as err:
        raise CheckpointError(_describe_failure(path, err)) from None


def save(path: PathLike, obj: Any, *, args: Any = None, meta: bool = True) -> Path:
    """Write `obj` to `path` atomically, so a crash leaves either the old file or the new one; return the path.

    With `meta=True` a dict gets a `"kdrepro_meta"` block (schema version, git commit, run `args`, torch version,
    creation time) in a shallow copy; `meta=False` writes `obj` unchanged, for the originals' exact layouts.
    A bare `state_dict` saved with `meta=True` gains that key, so `load_state_dict` would reject it: use `meta=False`.
    """
    if args is not None and not (meta and isinstance(obj, dict)):
        raise ValueError("save(args=...) records the args in the meta block, which needs meta=True and a dict obj")
    if meta and isinstance(obj, dict):
        obj = copy.copy(obj)
        obj[META_KEY] = _build_meta(args)
    target = Path(path)
    _atomic_torch_save(obj, target)
    return target


def _build_meta(args: Any) -> dict[str, Any]:
    """Return the provenance block `save` adds: plain types only, so it loads with `weights_only=True`."""
    return {
        "schema_version": SCHEMA_VERSION,
        "git_commit": _git_commit(),
        "args": None if args is None else args_to_dict(args),
        "torch_version": str(torch.__version__),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _atomic_torch_save(obj: Any, target: Path) -> None:
    """Save to a temporary file beside `target`, fsync it, rename it onto `target`, then fsync the folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    f = tmp.open("xb")  # exclusive: never clobbers a file this call did not create, so cleanup may remove it
    try:
        with f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """Persist the rename: on POSIX a new directory entry is durable only once the directory itself is fsynced."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _git_commit() -> str | None:
    """Return the HEAD sha of the git repository holding the cwd, or None when there is none or git fails."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and _SHA.fullmatch(sha) else None


def _describe_failure(path: Path, err: Exception) -> str:
    """Say in one line why `torch.load` could not read `path`, judging from the error and the file's first bytes."""
    if isinstance(err, OSError):
        return _describe_os_error(path, err)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError as read_err:
        return _describe_os_error(path, read_err)
    if size == 0:
        return f"checkpoint {path} is empty (0 bytes); it was probably cut off while being written or copied"
    if not (head.startswith(_ZIP_HEAD) or (head.startswith(b"\x80") and _LEGACY_MAGIC in head)):
        return (
            f"{path} is not a PyTorch checkpoint: it is neither a torch zip archive nor a legacy torch pickle "
            f"(first bytes {head[:8]!r})"
        )
    return _describe_unreadable_checkpoint(path, err, size, head)


def _describe_os_error(path: Path, err: OSError) -> str:
    """Say in one line why the file system would not hand over `path`."""
    if isinstance(err, FileNotFoundError):
        return f"checkpoint {path} does not exist"
    if isinstance(err, IsADirectoryError):
        return f"checkpoint {path} is a directory, not a file"
    return f"checkpoint {path} cannot be read: {err.strerror or _reason(err)}"


def _describe_unreadable_checkpoint(path: Path, err: Exception, size: int, head: bytes) -> str:
    """Say in one line why a file in a torch format did not load: refused Python objects, or damaged bytes."""
    blocked = sorted(set(_BLOCKED_GLOBAL.findall(str(err))))
    if blocked:
        return (
            f"checkpoint {path} holds Python objects ({', '.join(blocked)}) that weights_only=True refuses to "
            f"unpickle; if the file comes from a trusted source, load it as a trusted legacy file: "
            f"load(path, weights_only=False, trusted_legacy='<file kind, e.g. RepDistiller *_last.pth>')"
        )
    if isinstance(err, pickle.UnpicklingError) and "Weights only load failed" in str(err):
        return (
            f"checkpoint {path} was refused by torch's weights_only unpickler ({_reason(err)}); if the file comes "
            f"from a trusted source, load it with load(path, weights_only=False, trusted_legacy='<file kind>')"
        )
    if head.startswith(_ZIP_HEAD) and zipfile.is_zipfile(path):
        return f"{path} is a zip archive but not a readable torch checkpoint: {_reason(err)}"
    return f"checkpoint {path} is truncated or corrupted ({size} bytes): {_reason(err)}"


def _reason(err: BaseException) -> str:
    """Return the error's type and the first sentence of its telling line, shortened to fit in one line."""
    text = str(err).strip()
    found = _WEIGHTS_ONLY_REASON.search(text)
    line = found.group(1) if found else (text.splitlines() or [""])[0]
    line = _ENFORCE_PREFIX.sub("", line.strip()).split(". ")[0]
    if len(line) > _MAX_REASON_CHARS:
        line = line[: _MAX_REASON_CHARS - 1] + "…"
    return f"{type(err).__name__}: {line}" if line else type(err).__name__
