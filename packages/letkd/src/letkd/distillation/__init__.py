"""The original `distillation` package (letKD / QuEST) under the import root `letkd.distillation`.

``project_root`` is where the experiment tree lives. The original took the repository root, which was also the working
directory its configs' relative paths (``./saved_models``, ``./experiments``) assume; once installed, the package folder
is ``site-packages``, so here it is the current working directory, read each time it is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def __getattr__(name: str) -> Any:
    """Resolve ``project_root`` lazily to the working directory, so `os.chdir` before a run is honoured."""
    if name == "project_root":
        return Path.cwd()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
