"""Fetch a released artifact (by registry name, URL or local path) into a cache, verifying its sha256.

Downloads go to `<target>.part` and are renamed onto the target only after the hash (when known) and the announced
length check out, so a target file is always complete. When nothing can be downloaded the error is one line that
tells a human which file to place where, with its hash and the mirrors to try by hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import gdown
import gdown.exceptions
from tqdm.auto import tqdm

from kdrepro_shared.checkpoints.registry import (
    MIRROR_SCHEMES,
    Artifact,
    get_artifact,
    is_sha256_hex,
    list_artifacts,
    mirror_link,
)
from kdrepro_shared.errors import CheckpointError, ChecksumError, DownloadError
from kdrepro_shared.paths import kdrepro_home

_CHUNK = 1 << 20
_TIMEOUT_S = 60
_TRUE = {"1", "true", "yes", "on"}
_FULL_HEX = 64
# What one mirror's failure looks like: urllib/socket errors are OSError, a broken HTTP exchange is HTTPException,
# gdown 5 raises FileURLRetrievalError and gdown 6 its base class DownloadError.
_MIRROR_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    http.client.HTTPException,
    gdown.exceptions.FileURLRetrievalError,
    getattr(gdown.exceptions, "DownloadError", gdown.exceptions.FileURLRetrievalError),
)


class _MirrorFailedError(Exception):
    """A mirror answered but did not deliver the file (short read, gdown gave nothing back)."""


def target_path(artifact: Artifact, dest_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where `fetch` puts an artifact: `<dest_dir>/<file_name>`, else `<home>/checkpoints/<name>/<file_name>`."""
    folder = Path(dest_dir) if dest_dir is not None else kdrepro_home() / "checkpoints" / artifact.name
    return folder / artifact.file_name


def is_offline(offline: bool | None = None) -> bool:
    """Offline when asked explicitly, else when `$KDREPRO_OFFLINE` is 1/true/yes/on."""
    if offline is not None:
        return offline
    return os.environ.get("KDREPRO_OFFLINE", "").strip().lower() in _TRUE


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so multi-GB checkpoints do not fill memory."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_matches(expected: str | None, actual: str) -> bool:
    """True when no hash is registered or `actual` starts with the registered (possibly prefix) hash."""
    return expected is None or actual.startswith(expected.lower())


def _verify(path: Path, sha256: str | None, size: int | None = None) -> None:
    """Raise ChecksumError when a file's size or sha256 differs from what is registered or given."""
    if size is not None and path.stat().st_size != size:
        raise ChecksumError(f"{path} has {path.stat().st_size} bytes, expected {size}: delete it or replace it")
    if sha256 is not None:
        actual = sha256_of(path)
        if not _hash_matches(sha256, actual):
            raise ChecksumError(f"{path} has sha256 {actual}, expected {sha256}: delete it or replace it")


def _artifact_for_url(url: str, file_name: str | None) -> Artifact:
    """An unregistered artifact for a URL, cached under `url/<host>/<url folders>` so distinct URLs do not collide."""
    scheme, _, rest = url.partition(":")
    if scheme.startswith("gdrive"):
        folders, default_name = (scheme, rest), rest
    else:
        parts = urlsplit(url)
        url_path = PurePosixPath(unquote(parts.path))
        safe = [p for p in url_path.parent.parts if p not in {"/", ".", ".."}]
        folders, default_name = (parts.netloc or scheme, *safe), url_path.name
    name = file_name or default_name
    if not name:
        raise CheckpointError(f"cannot tell a file name from {url}: pass file_name")
    return Artifact(name="/".join(("url", *folders)), file_name=name, paper=(), mirrors=(url,))


def _resolve(source: str | os.PathLike[str] | Artifact, file_name: str | None) -> Artifact | Path:
    """Turn fetch's first argument into an Artifact (registered name, URL) or an existing local file."""
    if isinstance(source, Artifact):
        return dataclasses.replace(source, file_name=file_name) if file_name else source
    text = os.fspath(source)
    names = [a.name for a in list_artifacts()]
    if text in names:
        return _resolve(get_artifact(text), file_name)
    scheme, colon, _ = text.partition(":")
    if colon and scheme in MIRROR_SCHEMES:
        return _artifact_for_url(text, file_name)
    if Path(text).is_file():
        return Path(text)
    valid = ", ".join(names)
    raise CheckpointError(f"{text} is not an existing file, a URL or a registered artifact (valid names: {valid})")


def _download_url(url: str, part: Path, desc: str, progress: bool) -> str:
    """Stream `url` into `part` with a progress bar; return the sha256. A body shorter than announced fails."""
    request = urllib.request.Request(url, headers={"User-Agent": "kdrepro"})
    digest = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response, part.open("wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=not progress) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise _MirrorFailedError(f"connection closed after {received} of {total} bytes")
    return digest.hexdigest()


def _download_drive(file_id: str, part: Path, progress: bool) -> str:
    """Download a Google Drive file through gdown into `part`; return its sha256."""
    if gdown.download(id=file_id, output=str(part), quiet=not progress) is None or not part.is_file():
        raise _MirrorFailedError("gdown returned no file")
    return sha256_of(part)


def _download_mirror(mirror: str, part: Path, artifact: Artifact, progress: bool) -> str:
    """Download one (non-folder) mirror into `part` and return its sha256; on any failure `part` is removed."""
    scheme, _, rest = mirror.partition(":")
    try:
        if scheme == "gdrive":
            actual = _download_drive(rest, part, progress)
        else:
            actual = _download_url(mirror, part, artifact.file_name, progress)
        if artifact.size is not None and part.stat().st_size != artifact.size:
            raise _MirrorFailedError(f"got {part.stat().st_size} bytes, expected {artifact.size}")
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return actual


def _one_line(text: str) -> str:
    """Collapse whitespace so a failure reason cannot break the one-line error contract."""
    return " ".join(text.split())


def _manual_message(artifact: Artifact, target: Path, reason: str) -> str:
    """The one-line instruction: which file to place where, its hash, the mirrors to try by hand and the note."""
    if artifact.sha256 is None:
        sha = "sha256 unknown"
    else:
        sha = f"sha256 {'' if len(artifact.sha256) == _FULL_HEX else 'prefix '}{artifact.sha256}"
    links = " or ".join(mirror_link(m) for m in artifact.mirrors) or "no known mirror"
    message = f"{reason}: place {artifact.file_name} at {target} ({sha}); download it by hand from {links}"
    if artifact.note:
        message += f"; note: {artifact.note}"
    return _one_line(message)


def _try_mirrors(artifact: Artifact, target: Path, progress: bool) -> Path:
    """Try each fetchable mirror in order; the first complete, hash-matching download becomes the target.

    A hash mismatch is final for that mirror only; when every mirror fails, any mismatch makes the error a
    ChecksumError (with both hashes), otherwise it is a DownloadError with the manual instruction.
    """
    part = target.with_name(target.name + ".part")
    failures: list[str] = []
    mismatch: str | None = None
    target.parent.mkdir(parents=True, exist_ok=True)
    for mirror in artifact.mirrors:
        link = mirror_link(mirror)
        if mirror.startswith("gdrive-folder:"):
            failures.append(f"{link} is a Drive folder: download by hand")
            continue
        try:
            actual = _download_mirror(mirror, part, artifact, progress)
        except (_MirrorFailedError, *_MIRROR_ERRORS) as err:
            failures.append(f"{link}: {_one_line(str(err)) or type(err).__name__}")
            continue
        if _hash_matches(artifact.sha256, actual):
            part.replace(target)  # os.replace: atomic on one filesystem
            return target
        part.unlink()
        mismatch = mismatch or f"{link} sent {artifact.file_name} with sha256 {actual}, expected {artifact.sha256}"
        failures.append(f"{link}: sha256 {actual}")
    if mismatch is not None:
        tried = "; ".join(failures)
        raise ChecksumError(_one_line(f"{mismatch}; nothing was saved to {target} (tried {tried})"))
    reason = f"could not download {artifact.file_name} ({'; '.join(failures)})"
    raise DownloadError(_manual_message(artifact, target, reason))


def fetch(
    source: str | os.PathLike[str] | Artifact,
    *,
    dest_dir: str | os.PathLike[str] | None = None,
    file_name: str | None = None,
    sha256: str | None = None,
    offline: bool | None = None,
    progress: bool = True,
) -> Path:
    """Return a local, verified copy of a registered artifact, a URL (http(s), file, gdrive:<id>) or a local file.

    A registered name or URL is cached at `target_path(...)` (or `<dest_dir>/<file_name>`); an existing, matching
    file is returned without network. `sha256` (full hex or prefix) overrides the registered hash. A local path is
    verified against `sha256` and returned as is. Offline (`offline=True` or `$KDREPRO_OFFLINE=1`) or when all
    mirrors fail, a one-line DownloadError says which file to place where.
    """
    if sha256 is not None:
        sha256 = sha256.lower()
        if not is_sha256_hex(sha256):
            raise CheckpointError(f"sha256 {sha256!r} is not a hex digest or a prefix of 8 to 64 hex characters")
    resolved = _resolve(source, file_name)
    if isinstance(resolved, Path):
        _verify(resolved, sha256)
        return resolved
    artifact = dataclasses.replace(resolved, sha256=sha256) if sha256 is not None else resolved
    target = target_path(artifact, dest_dir)
    if target.is_file():
        _verify(target, artifact.sha256, artifact.size)
        return target
    if is_offline(offline):
        reason = f"offline mode (offline=True or KDREPRO_OFFLINE=1), {artifact.file_name} is not cached"
        raise DownloadError(_manual_message(artifact, target, reason))
    return _try_mirrors(artifact, target, progress)
