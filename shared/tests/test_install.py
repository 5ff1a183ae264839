"""The two ways in: a user's `pip install -e packages/<name>` and the developers' uv workspace.

The pip path runs offline: a fresh venv sees this environment's site-packages through a `.pth` line, so pip
resolves our distributions for real without downloading torch again. The uv path is checked on the running
environment (nox and `uv sync` build it through the workspace) and on the committed uv.lock.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAPER_PACKAGES = sorted(p.parent.name for p in (ROOT / "packages").glob("*/pyproject.toml"))


def installed(package: str) -> bool:
    """Whether `package` (and so its dependencies) is installed here: the offline pip run needs them all."""
    try:
        importlib.metadata.distribution(package.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# nox's per-package sessions add this file to their pytest run, so each checks its own package.
INSTALLED_PAPER_PACKAGES = [p for p in PAPER_PACKAGES if installed(p)]


def make_overlay_venv(where: Path) -> Path:
    """Create a venv without pip whose sys.path ends with this environment's site-packages; return its python."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    purelib = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    overlay = Path(purelib.decode().strip()) / "_kdrepro_test_overlay.pth"
    overlay.write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def pip_install_editable(python: Path, *targets: str) -> None:
    """Run this environment's pip against `python`, offline, with the overlay's hatchling as build backend."""
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--no-build-isolation"]
    for target in targets:
        cmd += ["-e", str(ROOT / target)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)


def origin(python: Path, module: str) -> Path:
    """Path of the file `module` is imported from inside the venv of `python`."""
    out = subprocess.check_output([python, "-c", f"import {module}; print({module}.__file__)"], cwd="/")
    return Path(out.decode().strip())


def direct_url(python: Path, distribution: str) -> dict:
    """The PEP 610 record of how `distribution` was installed in the venv of `python`."""
    code = f"import importlib.metadata as m; print(m.distribution({distribution!r}).read_text('direct_url.json'))"
    return json.loads(subprocess.check_output([python, "-c", code], cwd="/"))


@pytest.fixture(scope="module")
def pip_available() -> None:
    """Skip when the running environment has no pip (uv-made venvs may not)."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], check=False, capture_output=True).returncode != 0:
        pytest.skip("pip is not installed in the test environment (install the `test` extra)")


def test_pip_installs_shared_editable(tmp_path: Path, pip_available: None) -> None:
    python = make_overlay_venv(tmp_path / "venv")
    pip_install_editable(python, "shared")
    assert origin(python, "kdrepro_shared") == ROOT / "shared" / "src" / "kdrepro_shared" / "__init__.py"


@pytest.mark.parametrize("package", INSTALLED_PAPER_PACKAGES)
def test_pip_user_path_brings_shared_along(tmp_path: Path, pip_available: None, package: str) -> None:
    """`pip install -e packages/<name>` alone installs shared as a copy from the repository."""
    python = make_overlay_venv(tmp_path / "venv")
    pip_install_editable(python, f"packages/{package}")
    assert origin(python, package).is_relative_to(ROOT / "packages" / package)
    shared_file = origin(python, "kdrepro_shared")
    assert shared_file.is_relative_to(tmp_path / "venv")
    assert direct_url(python, "kdrepro-shared")["url"] == (ROOT / "shared").as_uri()


def test_developer_environment_has_shared_editable() -> None:
    """nox and `uv sync` install through the workspace source, so the running kdrepro-shared is the repository's."""
    python = Path(sys.executable)
    assert direct_url(python, "kdrepro-shared") == {"url": (ROOT / "shared").as_uri(), "dir_info": {"editable": True}}


def test_uv_lock_resolves_shared_from_the_workspace() -> None:
    """Every package in uv.lock takes kdrepro-shared from the workspace folder, editable, never from an index."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    members = {p["name"]: p for p in lock["package"] if "editable" in p.get("source", {})}
    assert set(members) >= {"kdrepro-shared", *(name.replace("_", "-") for name in PAPER_PACKAGES)}
    for name in PAPER_PACKAGES:
        requires = members[name.replace("_", "-")]["metadata"]["requires-dist"]
        assert {"name": "kdrepro-shared", "editable": "shared"} in requires
