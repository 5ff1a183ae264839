"""Config resolution: a dotted name such as ``CIFAR100.resnetv1.RN56_RN20.letKD-1`` names a Python file.

The original imported the name as a module from the repository root (hyphens are fine for `__import__`). Here the
name is looked up as ``<dotted path>.py`` first under the working directory (user configs win), then in the tree
shipped inside this package, then as an importable module; an unknown name is a one-line error with near matches.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from kdrepro_shared.errors import KdReproError

SHIPPED_ROOT = Path(__file__).resolve().parent
CONFIG_TREES = ("CIFAR100",)


class ConfigNotFoundError(KdReproError):
    """No config file or module has the given dotted name."""


def config_relpath(name: str) -> Path:
    """``a.b.c`` -> ``a/b/c.py``."""
    return Path(*name.split(".")).with_suffix(".py")


def known_config_names(roots: tuple[Path, ...] | None = None) -> list[str]:
    """Dotted names of every config file under the config trees of `roots` (default: working dir, shipped tree)."""
    roots = roots if roots is not None else (Path.cwd(), SHIPPED_ROOT)
    names = set()
    for root in roots:
        for tree in CONFIG_TREES:
            for path in (root / tree).rglob("*.py"):
                names.add(".".join(path.relative_to(root).with_suffix("").parts))
    return sorted(names)


def find_config_file(name: str) -> Path | None:
    """The file `name` denotes: under the working directory first, then in the shipped tree; None if neither."""
    if not name or any(not part for part in name.split(".")):
        return None
    for root in (Path.cwd(), SHIPPED_ROOT):
        path = root / config_relpath(name)
        if path.is_file():
            return path
    return None


def _module_from_file(name: str, path: Path) -> ModuleType:
    """Execute the config file as a fresh module named after its dotted name."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigNotFoundError(f"config {name!r}: {path} cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _importable(name: str) -> ModuleType | None:
    """The module `name` if it can be imported from ``sys.path`` (configs kept in an installed package)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and name.startswith(err.name):
            return None
        raise


def not_found_message(name: str) -> str:
    """One line naming the missing config, where it was looked for and the nearest known names."""
    names = known_config_names()
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"known configs: {', '.join(names[:8])}, ..."
    return (
        f"unknown config {name!r}: no {config_relpath(name) if name else '<file>'} under {Path.cwd()} or "
        f"{SHIPPED_ROOT}, and no such module; {hint}"
    )


def load_config_module(name: str) -> ModuleType:
    """The module of config `name` (file under the working dir, shipped file, or importable module)."""
    path = find_config_file(name)
    module = _module_from_file(name, path) if path is not None else (_importable(name) if name else None)
    if module is None:
        raise ConfigNotFoundError(not_found_message(name))
    if not isinstance(getattr(module, "config", None), dict):
        raise ConfigNotFoundError(f"config {name!r} ({module.__file__}) has no module-level dict named `config`")
    return module


def load_config(name: str) -> dict[str, Any]:
    """A fresh copy of the ``config`` dict of config `name` (each call re-executes the file)."""
    return load_config_module(name).config
