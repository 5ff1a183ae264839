"""Checkpoints of kd-repro: the registry of released artifacts, `fetch`, checkpoint I/O and training state.

`fetch(name_or_url_or_path)` returns a verified local file; `list_artifacts()` / `get_artifact()` describe what the
papers released; `load` / `save` read and write checkpoint files; `TrainState` captures a resumable training run.
"""

from .download import fetch, is_offline, sha256_of, target_path
from .io import SCHEMA_VERSION, load, save
from .registry import PAPERS, Artifact, get_artifact, list_artifacts, mirror_link, registry_markdown
from .train_state import TrainState, capture_train_state, restore_train_state

__all__ = [
    "PAPERS",
    "SCHEMA_VERSION",
    "Artifact",
    "TrainState",
    "capture_train_state",
    "fetch",
    "get_artifact",
    "is_offline",
    "list_artifacts",
    "load",
    "mirror_link",
    "registry_markdown",
    "restore_train_state",
    "save",
    "sha256_of",
    "target_path",
]
