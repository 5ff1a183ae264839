"""Where kd-repro keeps what it caches: downloaded checkpoints, built extensions and demo data."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def kdrepro_home() -> Path:
    """The cache root: `$KDREPRO_HOME` when set, else the platform's user cache folder for kdrepro."""
    home = os.environ.get("KDREPRO_HOME")
    return Path(home).expanduser() if home else Path(platformdirs.user_cache_dir("kdrepro"))
