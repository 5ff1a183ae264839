#!/usr/bin/env python3
# /// script
# dependencies = ["nox>=2025.2.9", "uv>=0.5"]
# ///
"""Developer sessions of kd-repro: lint, tests, demo and benchmarks, one venv per session.

Run `python noxfile.py -s <session>` on a machine that has only Python: when nox is missing this file first
builds `.nox/_bootstrap` (a venv holding nox and uv) and re-runs itself there. With uv as the backend, torch and
its CUDA libraries are hard-linked from uv's cache, so the per-package venvs do not copy gigabytes each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BOOTSTRAP = ROOT / ".nox" / "_bootstrap"


def _bootstrap_and_rerun() -> None:
    """Install nox and uv into `.nox/_bootstrap` with pip, then replace this process with a run from there."""
    bin_dir = BOOTSTRAP / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    ready = python.exists() and subprocess.run([str(python), "-c", "import nox, uv"], check=False).returncode == 0
    if not ready:
        print(f"nox is not installed: creating {BOOTSTRAP} with nox and uv (once)", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(BOOTSTRAP)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "nox>=2025.2.9", "uv>=0.5"], check=True)
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


try:
    import nox
except ModuleNotFoundError:
    if __name__ != "__main__":
        raise
    _bootstrap_and_rerun()

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = True

SHARED = "shared"
PAPER_PACKAGES = sorted(p.parent.name for p in (ROOT / "packages").glob("*/pyproject.toml"))
ALL_PACKAGES = [SHARED, *PAPER_PACKAGES]
# CI machines have two cores; keep BLAS/OpenMP from oversubscribing them.
QUIET_THREADS = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}


def package_dir(package: str) -> str:
    """Folder of `package` relative to the repository root."""
    return SHARED if package == SHARED else f"packages/{package}"


def import_name(package: str) -> str:
    """Import root of `package` (each package lives under its own name so that five never collide)."""
    return "kdrepro_shared" if package == SHARED else package


def having(relative_path: str) -> list[str]:
    """The packages whose folder holds `relative_path` (`{name}` stands for the import name)."""
    return [p for p in ALL_PACKAGES if (ROOT / package_dir(p) / relative_path.format(name=import_name(p))).exists()]


def install_package(session: nox.Session, package: str, extra: str = "") -> None:
    """Install shared and `package` editable in one resolve, so the workspace source keeps shared editable."""
    suffix = f"[{extra}]" if extra else ""
    targets = ["-e", f"./{SHARED}{suffix}"]
    if package != SHARED:
        targets += ["-e", f"./{package_dir(package)}{suffix}"]
    session.install(*targets)


@nox.session(default=True)
def lint(session: nox.Session) -> None:
    """Lint and format-check the whole repository with ruff."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(default=True)
@nox.parametrize("package", ALL_PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's default (CPU) tests; `-s tests` runs them for every package."""
    install_package(session, package, extra="test")
    # A paper package also runs the install checks, which need it installed: its pip user path among them.
    install_checks = [] if package == SHARED else [f"{SHARED}/tests/test_install.py"]
    session.run("pytest", f"{package_dir(package)}/tests", *install_checks, *session.posargs, env=QUIET_THREADS)


@nox.session(default=False)
@nox.parametrize("package", having("src/{name}/demo.py"))
def demo(session: nox.Session, package: str) -> None:
    """Run one package's pipeline end to end on its embedded default; `-s demo` runs every package."""
    install_package(session, package)
    session.run("python", "-m", f"{import_name(package)}.demo", *session.posargs, env=QUIET_THREADS)


@nox.session(default=False)
@nox.parametrize("package", having("benchmarks/bench.py"))
def bench(session: nox.Session, package: str) -> None:
    """Run one package's benchmark script, which prints throughput beside the figure it is compared to."""
    install_package(session, package)
    script = ROOT / package_dir(package) / "benchmarks" / "bench.py"
    session.run("python", str(script), *session.posargs, env=QUIET_THREADS)


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.argv[1:1] = ["-f", str(ROOT / "noxfile.py")]
    nox.main()
