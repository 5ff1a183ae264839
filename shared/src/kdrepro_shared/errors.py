"""Error types whose message is one line a user can act on, and a guard that prints them as such."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class KdReproError(Exception):
    """Base of every error kd-repro raises for bad input; its message is one self-contained line."""


class CheckpointError(KdReproError):
    """A checkpoint file is missing, truncated, not a checkpoint, or not what the caller expected."""


class ChecksumError(CheckpointError):
    """A downloaded or placed file does not have the registered sha256."""


class DownloadError(CheckpointError):
    """A file could not be fetched; the message says where to place it by hand."""


class DatasetLayoutError(KdReproError, FileNotFoundError):
    """A dataset root does not hold the on-disk layout the reader expects; the message names that layout."""


class DatasetExistsError(KdReproError, FileExistsError):
    """A writer's target folder already holds other files; the message says which folder to delete or change."""


def exit_on_user_error(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap an entry point so a `KdReproError` ends the program with its one line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except KdReproError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
