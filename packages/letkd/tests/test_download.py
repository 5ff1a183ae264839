"""`download_cifar100_teacher.py` against a local HTTP server (127.0.0.1 only): mirrors, archive fallback, offline."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from kdrepro_shared.checkpoints import get_artifact
from kdrepro_shared.errors import CheckpointError, DownloadError
from letkd import download_teachers as dl

PACKAGE = Path(__file__).resolve().parents[1]


def teacher_bytes(name: str) -> bytes:
    """A small file in the RepDistiller teacher layout, tagged with the teacher's name."""
    buffer = io.BytesIO()
    state = {"conv1.weight": torch.full((2, 3, 1, 1), float(len(name)))}
    torch.save({"epoch": 240, "model": state, "accuracy": torch.tensor(70.0), "optimizer": {"name": name}}, buffer)
    return buffer.getvalue()


def archive_bytes(names: tuple[str, ...]) -> bytes:
    """mdistiller's cifar_teachers.tar layout holding `names`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in names:
            data = teacher_bytes(name)
            info = tarfile.TarInfo(f"cifar_teachers/{name}_vanilla/ckpt_epoch_240.pth")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _Server(ThreadingHTTPServer):
    """Serves `files` (URL path -> bytes) and records every request."""

    daemon_threads = True
    files: dict[str, bytes]
    requests: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def server() -> Iterator[_Server]:
    """A server on 127.0.0.1 for one test."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests = {}, []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary kd-repro cache, online mode, no proxy for 127.0.0.1, and the package folder as cwd."""
    monkeypatch.setenv("KDREPRO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KDREPRO_OFFLINE", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture
def mirrors(server: _Server, monkeypatch: pytest.MonkeyPatch) -> _Server:
    """The real registry entries with their mirrors pointed at the local server (same file names and keys)."""
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def local(name: str):
        artifact = get_artifact(name)
        mirror = f"{base}/{artifact.name}/{artifact.file_name}"
        return dataclasses.replace(artifact, mirrors=(f"{base}/dead/{artifact.file_name}", mirror))

    monkeypatch.setattr(dl, "get_artifact", local)
    return server


def test_registry_names_the_six_teachers_for_letkd() -> None:
    """Every teacher of the original script has a registry entry for letkd and a member in the archive."""
    archive = get_artifact(dl.ARCHIVE)
    for name in dl.TEACHERS:
        artifact = dl.teacher_artifact(name)
        assert artifact.file_name == "ckpt_epoch_240.pth"
        assert "letkd" in artifact.paper
        assert dl._archive_member(archive, f"{name}_vanilla", artifact.file_name).startswith("cifar_teachers/")


def test_teachers_come_from_their_mirrors(mirrors: _Server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Each file lands in saved_models/<arch>_vanilla/ with the original's message; a rerun reuses it."""
    for name in dl.TEACHERS:
        mirrors.files[f"/repdistiller/{name}_vanilla/ckpt_epoch_240.pth"] = teacher_bytes(name)
    paths = dl.download_teachers(progress=False)
    assert paths == [Path("saved_models") / f"{n}_vanilla" / "ckpt_epoch_240.pth" for n in dl.TEACHERS]
    for name, path in zip(dl.TEACHERS, paths, strict=True):
        assert (tmp_path / path).read_bytes() == teacher_bytes(name)
    assert "Downloaded resnet56_vanilla/ckpt_epoch_240.pth to saved_models/" in capsys.readouterr().out
    served = len(mirrors.requests)
    dl.download_teachers(progress=False)
    assert len(mirrors.requests) == served


def test_archive_is_the_fallback(mirrors: _Server, tmp_path: Path, home: Path) -> None:
    """With no direct mirror answering, the teachers are extracted from the cached archive (downloaded once)."""
    mirrors.files["/repdistiller/cifar_teachers_tar/cifar_teachers.tar"] = archive_bytes(dl.TEACHERS)
    dl.download_teachers(names=("resnet56", "ResNet50"), progress=False)
    for name in ("resnet56", "ResNet50"):
        assert (tmp_path / "saved_models" / f"{name}_vanilla" / "ckpt_epoch_240.pth").read_bytes() == teacher_bytes(
            name
        )
    assert mirrors.requests.count("/repdistiller/cifar_teachers_tar/cifar_teachers.tar") == 1
    assert (home / "checkpoints" / dl.ARCHIVE / "cifar_teachers.tar").is_file()
    assert not list((tmp_path / "saved_models").rglob("*.part"))


def test_nothing_reachable_gives_one_line_with_both_routes(mirrors: _Server) -> None:
    """Every mirror dead: the error names the target file and both the teacher's and the archive's links."""
    with pytest.raises(DownloadError) as err:
        dl.download_teacher("resnet110", progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert "saved_models/resnet110_vanilla/ckpt_epoch_240.pth" in message
    assert "archive fallback failed too" in message
    assert "cifar_teachers.tar" in message


def test_offline_names_what_to_place(tmp_path: Path) -> None:
    """Offline, nothing is requested and the message says where to put the file (the real registry links)."""
    with pytest.raises(DownloadError, match=r"offline mode.*resnet32x4_vanilla.*mdistiller"):
        dl.download_teacher("resnet32x4", offline=True, progress=False)
    assert not (tmp_path / "saved_models" / "resnet32x4_vanilla" / "ckpt_epoch_240.pth").exists()


def test_a_non_checkpoint_download_is_refused_and_removed(mirrors: _Server, tmp_path: Path) -> None:
    """A mirror serving something else than a teacher checkpoint leaves no file behind."""
    buffer = io.BytesIO()
    torch.save({"state_dict": {}}, buffer)
    mirrors.files["/repdistiller/vgg13_vanilla/ckpt_epoch_240.pth"] = buffer.getvalue()
    with pytest.raises(CheckpointError, match=r"not a RepDistiller teacher checkpoint.*'epoch'"):
        dl.download_teacher("vgg13", progress=False)
    assert not (tmp_path / "saved_models" / "vgg13_vanilla" / "ckpt_epoch_240.pth").exists()


def test_main_offline_exits_nonzero_with_one_line(capsys: pytest.CaptureFixture) -> None:
    """The entry point ends a failure with status 2 and one line on stderr."""
    with pytest.raises(SystemExit) as exit_info:
        dl.main(["--offline", "--only", "resnet56", "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "saved_models/resnet56_vanilla/ckpt_epoch_240.pth" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_entry_script_offline_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    """The package-root script runs the same code and fails cleanly offline."""
    done = subprocess.run(
        [sys.executable, str(PACKAGE / "download_cifar100_teacher.py"), "--offline", "--only", "resnet56"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert "saved_models/resnet56_vanilla/ckpt_epoch_240.pth" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
