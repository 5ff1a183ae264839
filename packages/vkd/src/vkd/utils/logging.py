"""The original's CSV logger (`utils/logging.py`, from I-JEPA): a header line, then one formatted row per call."""

from __future__ import annotations

import os
from typing import Any


class CSVLogger:
    """Appends rows to `fname`; each column is a `(printf format, name)` pair and the header is written on creation.

    The file is opened in append mode, so a resumed run repeats the header, as the original does.
    """

    def __init__(self, fname: str | os.PathLike[str], *argv: tuple[str, str]) -> None:
        self.fname = fname
        self.types = [fmt for fmt, _ in argv]
        with open(self.fname, "a") as f:  # noqa: PTH123 -- append mode as in the original
            print(",".join(name for _, name in argv), file=f)

    def bar(self) -> None:
        """Write a separator line (before the final EMA row)."""
        with open(self.fname, "a") as f:  # noqa: PTH123
            print("-----------------", file=f)

    def log(self, *argv: Any) -> None:
        """Write one row: each value formatted with its column's printf format (0-d tensors are accepted)."""
        with open(self.fname, "a") as f:  # noqa: PTH123
            print(",".join(fmt % value for fmt, value in zip(self.types, argv, strict=False)), file=f)
