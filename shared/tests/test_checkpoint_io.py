"""Tests for checkpoint save (atomic, with a meta block) and load (one-line errors, trusted legacy files)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections import OrderedDict
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

import kdrepro_shared
from kdrepro_shared.checkpoints import io as ckpt_io
from kdrepro_shared.checkpoints.io import META_KEY, SCHEMA_VERSION, load, save
from kdrepro_shared.errors import CheckpointError

# Saves version 1, then starts saving version 2 with os.fsync stalled after the data fsync: the parent kills it there.
KILLED_SAVER = r"""
import os, sys, time
import torch
from kdrepro_shared.checkpoints.io import save

target = sys.argv[1]
save(target, {"version": 1, "weight": torch.full((256,), 1.0)})
real_fsync = os.fsync

def stalled_fsync(fd):
    real_fsync(fd)
    print("FSYNCED", flush=True)
    time.sleep(600)

os.fsync = stalled_fsync
save(target, {"version": 2, "weight": torch.full((256,), 2.0)})
"""


def _child_env() -> dict[str, str]:
    """Environment for a child python that imports the same kdrepro_shared as this test."""
    package_root = str(Path(kdrepro_shared.__file__).parents[1])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))


@pytest.mark.timeout(300)
def test_kill_during_save_keeps_previous_checkpoint(tmp_path: Path) -> None:
    target = tmp_path / "ckpt.pt"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVER, str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    try:
        marker = child.stdout.readline()
        assert marker == "FSYNCED\n", child.stderr.read()
    finally:
        child.kill()
        child.communicate()
    if os.name == "posix":
        assert child.returncode == -signal.SIGKILL

    survivor = load(target)
    assert survivor["version"] == 1
    assert torch.equal(survivor["weight"], torch.full((256,), 1.0))
    leftovers = [path for path in tmp_path.iterdir() if path != target]
    assert len(leftovers) == 1
    assert leftovers[0].name.startswith(".ckpt.pt.") and leftovers[0].suffix == ".tmp"
    assert load(leftovers[0])["version"] == 2  # the kill landed after version 2 was fully written, before the rename


def test_meta_block_records_provenance_in_plain_types(tmp_path: Path) -> None:
    args = argparse.Namespace(
        lr=0.05,
        epochs=240,
        name="resnet8x4",
        resume=None,
        data=Path("/data"),
        milestones=(150, 180),
        beta=np.float64(0.5),
    )
    obj = {"model": {"w": torch.ones(2)}, "epoch": 3}
    save(tmp_path / "ckpt.pt", obj, args=args)
    loaded = load(tmp_path / "ckpt.pt", weights_only=True)

    assert META_KEY not in obj  # the caller's dict is left alone
    assert loaded["epoch"] == 3
    assert torch.equal(loaded["model"]["w"], torch.ones(2))
    meta = loaded[META_KEY]
    assert set(meta) == {"schema_version", "git_commit", "args", "torch_version", "created"}
    assert meta["schema_version"] == SCHEMA_VERSION == 1
    assert meta["args"] == {
        "lr": 0.05,
        "epochs": 240,
        "name": "resnet8x4",
        "resume": None,
        "data": "/data",
        "milestones": [150, 180],
        "beta": 0.5,
    }
    assert type(meta["args"]["beta"]) is float  # numpy scalars are stored as Python's
    assert meta["torch_version"] == str(torch.__version__)
    assert datetime.fromisoformat(meta["created"]).tzinfo is not None


@pytest.mark.skipif(os.name != "posix", reason="fake git is a shell script")
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("echo 0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef01234567"),
        ("echo 'fatal: not a git repository' >&2; exit 128", None),
        ("echo not-a-sha", None),
        ("exec sleep 30", None),
    ],
)
def test_git_commit_comes_from_git_and_never_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, expected: str | None
) -> None:
    fake_git = tmp_path / "bin" / "git"
    fake_git.parent.mkdir()
    fake_git.write_text(f"#!/bin/sh\n{script}\n")
    fake_git.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_git.parent))
    monkeypatch.setattr(ckpt_io, "_GIT_TIMEOUT_S", 0.5)
    save(tmp_path / "ckpt.pt", {"epoch": 1})
    assert load(tmp_path / "ckpt.pt")[META_KEY]["git_commit"] == expected


def test_git_commit_is_none_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    save(tmp_path / "ckpt.pt", {"epoch": 1})
    assert load(tmp_path / "ckpt.pt")[META_KEY]["git_commit"] is None


def test_meta_false_writes_object_unchanged(tmp_path: Path) -> None:
    state_dict = torch.nn.BatchNorm1d(3).state_dict()
    save(tmp_path / "sd.pt", state_dict, meta=False)
    loaded = load(tmp_path / "sd.pt")
    assert type(loaded) is OrderedDict
    assert list(loaded) == list(state_dict)
    assert loaded._metadata == state_dict._metadata
    for key, value in state_dict.items():
        assert torch.equal(loaded[key], value)
    torch.nn.BatchNorm1d(3).load_state_dict(loaded)  # strict: no extra key was added


def test_non_dict_object_is_written_unchanged(tmp_path: Path) -> None:
    save(tmp_path / "t.pt", torch.arange(5))
    assert torch.equal(load(tmp_path / "t.pt"), torch.arange(5))


def test_args_need_the_meta_block(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="meta=True and a dict"):
        save(tmp_path / "a.pt", {"epoch": 1}, args={"lr": 0.1}, meta=False)
    with pytest.raises(ValueError, match="meta=True and a dict"):
        save(tmp_path / "b.pt", torch.ones(1), args={"lr": 0.1})
    assert list(tmp_path.iterdir()) == []


def test_save_creates_parent_folders_with_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "exp1" / "ckpt.pt"
    assert save(target, {"epoch": 1}) == target
    assert load(target)["epoch"] == 1
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


class _Unpicklable:
    """An object whose pickling fails, so torch.save dies after writing part of the file."""

    def __reduce__(self) -> tuple:
        raise RuntimeError("refuses to pickle")


def test_failed_save_removes_temp_file_and_keeps_old_checkpoint(tmp_path: Path) -> None:
    target = tmp_path / "ckpt.pt"
    save(target, {"version": 1})
    with pytest.raises(RuntimeError, match="refuses to pickle"):
        save(target, {"weight": torch.ones(3), "hook": _Unpicklable()})
    assert list(tmp_path.iterdir()) == [target]
    assert load(target)["version"] == 1


def test_failed_rename_removes_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        save(tmp_path / "ckpt.pt", {"version": 1})
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def broken_files(tmp_path: Path) -> dict[str, Path]:
    """A set of files `load` must reject, keyed by what is wrong with them."""
    torch.save({"weight": torch.randn(64)}, tmp_path / "good.pt")
    good = (tmp_path / "good.pt").read_bytes()
    torch.save({"weight": torch.randn(64)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    legacy = (tmp_path / "legacy.pt").read_bytes()
    files = {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "truncated_legacy": legacy[: len(legacy) // 2],
        "text": b"epoch: 3\nacc: 71.2\n",
        "png": b"\x89PNG\r\n\x1a\n" + bytes(64),
    }
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.pt"
        paths[name].write_bytes(content)
    paths["missing"] = tmp_path / "missing.pt"
    paths["directory"] = tmp_path
    return paths


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing", "does not exist"),
        ("directory", "is a directory"),
        ("empty", "is empty (0 bytes)"),
        ("truncated", "is truncated or corrupted"),
        ("truncated_legacy", "is truncated or corrupted"),
        ("text", "is not a PyTorch checkpoint"),
        ("png", "is not a PyTorch checkpoint"),
    ],
)
def test_unreadable_files_give_one_line_error(broken_files: dict[str, Path], kind: str, expected: str) -> None:
    path = broken_files[kind]
    with pytest.raises(CheckpointError) as caught:
        load(path)
    message = str(caught.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.fixture
def namespace_checkpoint(tmp_path: Path) -> Path:
    """A checkpoint like RepDistiller's *_last.pth: it pickles the run's argparse.Namespace."""
    path = tmp_path / "resnet32x4_last.pth"
    torch.save({"epoch": 240, "model": {"w": torch.ones(2)}, "opt": argparse.Namespace(lr=0.05)}, path)
    return path


def test_weights_only_refusal_says_how_to_load_a_trusted_legacy_file(namespace_checkpoint: Path) -> None:
    with pytest.raises(CheckpointError) as caught:
        load(namespace_checkpoint)
    message = str(caught.value)
    assert "\n" not in message
    assert str(namespace_checkpoint) in message
    assert "argparse.Namespace" in message
    assert "trusted_legacy=" in message and "weights_only=False" in message


def test_weights_only_refusal_names_numpy_scalars(tmp_path: Path) -> None:
    path = tmp_path / "best.pth"
    torch.save({"best_acc": np.float64(71.3)}, path)
    with pytest.raises(CheckpointError, match=r"holds Python objects \(numpy\.[\w.]*scalar\)"):
        load(path)


@pytest.mark.parametrize("trusted_legacy", [None, "", "  "])
def test_unsafe_load_needs_a_named_legacy_kind(namespace_checkpoint: Path, trusted_legacy: str | None) -> None:
    with pytest.raises(ValueError, match="trusted_legacy"):
        load(namespace_checkpoint, weights_only=False, trusted_legacy=trusted_legacy)


def test_trusted_legacy_file_loads(namespace_checkpoint: Path) -> None:
    loaded = load(
        namespace_checkpoint, weights_only=False, trusted_legacy="RepDistiller *_last.pth (argparse.Namespace)"
    )
    assert loaded["opt"] == argparse.Namespace(lr=0.05)
    assert loaded["epoch"] == 240


def test_legacy_serialization_format_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.pth"
    torch.save({"w": torch.arange(4)}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(load(path)["w"], torch.arange(4))
