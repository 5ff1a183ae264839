"""Where a letKD-2 config's precomputed sub-class files are, and the command that makes them when they are not.

The LDA run writes ``centers_subclass_<S>_<C>.npy`` / ``final_scores_<S>_<C>.npy`` (S sub-classes per class, C LDA
components), while the original homogeneous letKD-2 configs read ``centers_subclass_<S>.npy`` /
``final_scores_<S>.npy``, names its authors made by renaming the files by hand. Each name a config gives is resolved
to whichever of the two spellings exists, so ``LDA=`` output is read as written and hand-renamed (shipped) files keep
working.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath
from typing import Any

from kdrepro_shared.errors import KdReproError

_WITH_COMPONENTS = re.compile(r"^(?P<stem>centers_subclass|final_scores)_(?P<s>\d+)_(?P<c>\d+)\.npy$")
_WITHOUT_COMPONENTS = re.compile(r"^(?P<stem>centers_subclass|final_scores)_(?P<s>\d+)\.npy$")
SUBCLASS_LAYER = "valueLayer_subclass"


class PrecomputedTargetError(KdReproError):
    """A letKD-2 config names sub-class files that do not exist under either spelling."""


def alternative_names(path: Path) -> list[Path]:
    """The other spellings of a sub-class file name: ``<stem>_<S>_<C>.npy`` <-> ``<stem>_<S>.npy`` (any C)."""
    if match := _WITH_COMPONENTS.match(path.name):
        return [path.with_name(f"{match['stem']}_{match['s']}.npy")]
    if match := _WITHOUT_COMPONENTS.match(path.name):
        return sorted(path.parent.glob(f"{match['stem']}_{match['s']}_*.npy"))
    return []


def resolve_subclass_file(name: str) -> str | None:
    """`name` itself if it exists, else its single existing alternative spelling, else None."""
    path = Path(name)
    if path.is_file():
        return name
    found = [p for p in alternative_names(path) if p.is_file()]
    return str(found[0]) if len(found) == 1 else None


def lda_command(path: str, stage: Any) -> str:
    """The ``LDA=`` run whose output folder holds `path` (the teacher config is the folder under ``LDA/``)."""
    parts = PurePath(path).parts
    config = ".".join(parts[parts.index("LDA") + 1 : -1]) if "LDA" in parts[:-1] else "<teacher config>"
    return f"python main_classification.py with config={config} LDA={stage}"


def resolve_subclass_targets(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Point every intermediate KD layer of `config` at existing sub-class files, in place.

    Returns the (configured, used) pairs that were respelled; raises `PrecomputedTargetError` naming the ``LDA=``
    command when a file exists under neither spelling.
    """
    respelled = []
    stage = config.get("which_stage_t", "<stage>")
    for network in config.get("networks", {}).values():
        if not str(network.get("def_file", "")).endswith(SUBCLASS_LAYER):
            continue
        opt = network["opt"]
        for key in ("centers_filename", "scores_filename"):
            found = resolve_subclass_file(opt[key])
            if found is None:
                raise PrecomputedTargetError(
                    f"precomputed sub-class file {opt[key]} is missing (relative to {Path.cwd()}); make it with "
                    f"`{lda_command(opt[key], stage)}`"
                )
            if found != opt[key]:
                respelled.append((opt[key], found))
                opt[key] = found
        for suffix in ("_scalings.npy", "_xbar.npy"):
            if not Path(opt["lda_filename"] + suffix).is_file():
                raise PrecomputedTargetError(
                    f"LDA model file {opt['lda_filename'] + suffix} is missing (relative to {Path.cwd()}); make it "
                    f"with `{lda_command(opt['lda_filename'], stage)}`"
                )
    return respelled
