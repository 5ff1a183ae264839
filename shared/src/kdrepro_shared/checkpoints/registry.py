"""Registry of the artifacts the five papers released: where each file lives, its hash, and what it holds.

The data is `artifacts.toml` next to this module; it records only facts the original READMEs and the specs state
(hashes and sizes are left out where unknown, so `sha256`/`size` are then None).
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from kdrepro_shared.errors import CheckpointError

PAPERS: tuple[str, ...] = ("distillers_icd_rrd", "letkd", "vkd", "whiten_mtd", "rkd_retina")
MIRROR_SCHEMES: tuple[str, ...] = ("http", "https", "file", "gdrive", "gdrive-folder")
_HEX = re.compile(r"[0-9a-f]{8,64}")
_DRIVE_ID = re.compile(r"[A-Za-z0-9_-]{10,}")


@dataclass(frozen=True)
class Artifact:
    """One released file: its registry `name` (e.g. `deit/regnety_160`), file name, papers and mirrors.

    `mirrors` are tried in order: http(s)/file URLs, `gdrive:<file id>` (fetched with gdown), or
    `gdrive-folder:<folder id>` (a Drive folder cannot be fetched automatically; only shown to the user).
    `sha256` is the full hex digest or a prefix of it (torch.hub's 8-char file-name prefix); None = unknown.
    `expected_keys` are top-level keys of the checkpoint dict; `weights_only` is False for files that pickle
    objects such as argparse.Namespace. `members` lists files inside an archive artifact (tar/zip).
    """

    name: str
    file_name: str
    paper: tuple[str, ...]
    mirrors: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    expected_keys: tuple[str, ...] = ()
    weights_only: bool = True
    note: str = ""
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Reject malformed entries at construction: a bad registry row fails when it is read, not mid-download."""
        problems = [
            *_check_file_name(self.file_name),
            *(f"unknown paper {p!r} (one of {', '.join(PAPERS)})" for p in self.paper if p not in PAPERS),
            *(problem for mirror in self.mirrors for problem in _check_mirror(mirror)),
            *_check_hash(self.sha256),
        ]
        if self.size is not None and self.size <= 0:
            problems.append(f"size must be positive, got {self.size}")
        if "\n" in self.note:
            problems.append("note must be one line")
        if problems:
            raise ValueError(f"artifact {self.name!r}: {'; '.join(problems)}")


def _check_file_name(file_name: str) -> list[str]:
    """A file name is a plain name: the target folder comes from the registry name or the caller's dest_dir."""
    if not file_name or PurePosixPath(file_name).name != file_name or file_name in {".", ".."}:
        return [f"file_name {file_name!r} must be a plain file name"]
    return []


def _check_mirror(mirror: str) -> list[str]:
    """A mirror is an http(s)/file URL, `gdrive:<id>` or `gdrive-folder:<id>`."""
    scheme, _, rest = mirror.partition(":")
    if scheme not in MIRROR_SCHEMES:
        return [f"mirror {mirror!r} must start with one of {', '.join(s + ':' for s in MIRROR_SCHEMES)}"]
    if scheme.startswith("gdrive") and not _DRIVE_ID.fullmatch(rest):
        return [f"mirror {mirror!r} has no Drive id"]
    if not scheme.startswith("gdrive") and not urlsplit(mirror).path:
        return [f"mirror {mirror!r} has no path"]
    return []


def is_sha256_hex(text: str) -> bool:
    """True for a lowercase hex sha256 digest or a prefix of one, 8 to 64 characters long."""
    return _HEX.fullmatch(text) is not None


def _check_hash(sha256: str | None) -> list[str]:
    """A registered hash is lowercase hex, 8 to 64 characters (a prefix of the full digest is allowed)."""
    if sha256 is not None and not is_sha256_hex(sha256):
        return [f"sha256 {sha256!r} must be 8-64 lowercase hex characters"]
    return []


def _artifact_from_toml(row: dict[str, Any]) -> Artifact:
    """Build an `Artifact` from one `[[artifact]]` table; lists become tuples so the dataclass stays hashable."""
    return Artifact(
        name=row["name"],
        file_name=row["file_name"],
        paper=tuple(row["paper"]),
        mirrors=tuple(row["mirrors"]),
        sha256=row.get("sha256"),
        size=row.get("size"),
        expected_keys=tuple(row.get("expected_keys", ())),
        weights_only=row.get("weights_only", True),
        note=row.get("note", ""),
        members=tuple(row.get("members", ())),
    )


@functools.cache
def _registry() -> dict[str, Artifact]:
    """Parse the shipped `artifacts.toml` once; duplicate names are a packaging bug and fail loudly."""
    text = resources.files(__package__).joinpath("artifacts.toml").read_text(encoding="utf-8")
    registry: dict[str, Artifact] = {}
    for row in tomllib.loads(text)["artifact"]:
        artifact = _artifact_from_toml(row)
        if artifact.name in registry:
            raise ValueError(f"artifacts.toml lists {artifact.name!r} twice")
        registry[artifact.name] = artifact
    return registry


def get_artifact(name: str) -> Artifact:
    """Return the registered artifact called `name`; an unknown name raises CheckpointError listing the valid ones."""
    try:
        return _registry()[name]
    except KeyError:
        raise CheckpointError(f"unknown artifact {name!r}; valid names: {', '.join(_registry())}") from None


def list_artifacts(paper: str | None = None) -> list[Artifact]:
    """All registered artifacts in file order, or only those a given paper package uses."""
    if paper is not None and paper not in PAPERS:
        raise CheckpointError(f"unknown paper {paper!r}; valid papers: {', '.join(PAPERS)}")
    return [a for a in _registry().values() if paper is None or paper in a.paper]


def mirror_link(mirror: str) -> str:
    """The address a human opens for a mirror: Drive ids become drive.google.com pages, URLs stay as they are."""
    scheme, _, rest = mirror.partition(":")
    if scheme == "gdrive":
        return f"https://drive.google.com/file/d/{rest}/view"
    if scheme == "gdrive-folder":
        return f"https://drive.google.com/drive/folders/{rest}"
    return mirror


def _mirror_label(mirror: str) -> str:
    """A short link text for the markdown table: `Drive file`, `Drive folder`, or the URL's host."""
    scheme = mirror.partition(":")[0]
    if scheme == "gdrive":
        return "Drive file"
    if scheme == "gdrive-folder":
        return "Drive folder"
    return urlsplit(mirror).netloc or scheme


def _cell(text: str) -> str:
    """Escape the one character that would break a markdown table cell."""
    return text.replace("|", "\\|")


def registry_markdown(paper: str | None = None) -> str:
    """A markdown table (name | file | paper | sha256 | mirrors) of the registry, for the READMEs to embed."""
    lines = ["| name | file | paper | sha256 | mirrors |", "| --- | --- | --- | --- | --- |"]
    for a in list_artifacts(paper):
        sha = f"`{a.sha256}`" if a.sha256 else "unknown"
        mirrors = ", ".join(f"[{_mirror_label(m)}]({mirror_link(m)})" for m in a.mirrors)
        cells = [f"`{a.name}`", f"`{a.file_name}`", ", ".join(a.paper), sha, mirrors]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
