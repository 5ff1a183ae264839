"""`fetch` against a local HTTP server (127.0.0.1 only): caching, hashes, dropped connections, Drive, offline."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gdown
import gdown.exceptions
import platformdirs
import pytest

from kdrepro_shared.checkpoints import download as fetch_module
from kdrepro_shared.checkpoints.__main__ import main
from kdrepro_shared.checkpoints.download import fetch, kdrepro_home, target_path
from kdrepro_shared.checkpoints.registry import Artifact
from kdrepro_shared.errors import CheckpointError, ChecksumError, DownloadError

GOOD = bytes(range(256)) * 64
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()
BAD = b"these are not the released bytes\n" * 100
BAD_SHA = hashlib.sha256(BAD).hexdigest()


class _Server(ThreadingHTTPServer):
    """A test server that records the path of every request it receives."""

    daemon_threads = True
    requests: list[str]


class _Handler(BaseHTTPRequestHandler):
    """Serves /good.bin, /bad.bin (other bytes than registered), /drop.bin (closes mid-body); anything else 404."""

    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if self.path == "/good.bin":
            self._send(GOOD, len(GOOD))
        elif self.path == "/bad.bin":
            self._send(BAD, len(BAD))
        elif self.path == "/drop.bin":
            self._send(GOOD[: len(GOOD) // 2], len(GOOD))
            self.close_connection = True
        else:
            self.send_error(404)

    def _send(self, body: bytes, announced: int) -> None:
        """Answer 200 announcing `announced` bytes and send `body` (shorter than announced to drop the connection)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean (the default writes every request to stderr)."""


@pytest.fixture
def server() -> Iterator[_Server]:
    """A ThreadingHTTPServer on 127.0.0.1 and a free port, running in a daemon thread for one test."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def base(server: _Server) -> str:
    """The server's root URL."""
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the cache at a temporary KDREPRO_HOME, clear offline mode and keep proxies away from 127.0.0.1."""
    monkeypatch.setenv("KDREPRO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KDREPRO_OFFLINE", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    return tmp_path / "home"


def artifact(*mirrors: str, sha256: str | None = GOOD_SHA, size: int | None = None) -> Artifact:
    """A registry entry built in the test, so no test depends on the real release URLs."""
    return Artifact(name="test/model", file_name="model.pth", paper=("vkd",), mirrors=mirrors, sha256=sha256, size=size)


def leftovers(folder: Path) -> list[str]:
    """Files under `folder` (the cache entry), to assert that a failed fetch leaves nothing behind."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_good_file_is_downloaded_verified_and_cached(server: _Server, base: str, home: Path) -> None:
    path = fetch(artifact(f"{base}/good.bin"), progress=False)
    assert path == home / "checkpoints" / "test" / "model" / "model.pth"
    assert path.read_bytes() == GOOD
    assert leftovers(path.parent) == ["model.pth"]
    assert fetch(artifact(f"{base}/good.bin"), progress=False) == path
    assert server.requests == ["/good.bin"]


def test_progress_bar_total_is_the_content_length(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    real_tqdm = fetch_module.tqdm

    def recording_tqdm(**kwargs: object) -> object:
        seen.update(kwargs)
        return real_tqdm(**kwargs)

    monkeypatch.setattr(fetch_module, "tqdm", recording_tqdm)
    fetch(artifact(f"{base}/good.bin"))
    assert seen["total"] == len(GOOD)
    assert seen["disable"] is False


def test_hash_prefix_is_accepted(base: str) -> None:
    assert fetch(artifact(f"{base}/good.bin", sha256=GOOD_SHA[:8]), progress=False).read_bytes() == GOOD


def test_wrong_sha256_raises_and_leaves_nothing(base: str, home: Path) -> None:
    with pytest.raises(ChecksumError) as err:
        fetch(artifact(f"{base}/bad.bin"), progress=False)
    message = str(err.value)
    assert GOOD_SHA in message
    assert BAD_SHA in message
    assert "model.pth" in message
    assert "\n" not in message
    assert leftovers(home) == []


def test_hash_mismatch_is_final_for_that_mirror_only(server: _Server, base: str) -> None:
    path = fetch(artifact(f"{base}/bad.bin", f"{base}/good.bin"), progress=False)
    assert path.read_bytes() == GOOD
    assert server.requests == ["/bad.bin", "/good.bin"]


def test_mismatch_plus_network_failure_is_a_checksum_error(base: str) -> None:
    with pytest.raises(ChecksumError, match=BAD_SHA):
        fetch(artifact(f"{base}/missing.bin", f"{base}/bad.bin"), progress=False)


def test_dropped_connection_fails_and_leaves_nothing(base: str, home: Path) -> None:
    with pytest.raises(DownloadError) as err:
        fetch(artifact(f"{base}/drop.bin"), progress=False)
    assert f"connection closed after {len(GOOD) // 2} of {len(GOOD)} bytes" in str(err.value)
    assert not isinstance(err.value, ChecksumError)
    assert leftovers(home) == []


def test_dropped_connection_falls_through_to_the_next_mirror(server: _Server, base: str) -> None:
    path = fetch(artifact(f"{base}/drop.bin", f"{base}/good.bin", sha256=None), progress=False)
    assert path.read_bytes() == GOOD
    assert server.requests == ["/drop.bin", "/good.bin"]
    assert leftovers(path.parent) == ["model.pth"]


def test_registered_size_is_checked(base: str, home: Path) -> None:
    with pytest.raises(DownloadError, match=f"got {len(GOOD)} bytes, expected {len(GOOD) + 1}"):
        fetch(artifact(f"{base}/good.bin", size=len(GOOD) + 1), progress=False)
    assert leftovers(home) == []


def test_unreachable_mirrors_end_with_one_line_instruction(base: str, home: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{sock.getsockname()[1]}/good.bin"
    with pytest.raises(DownloadError) as err:
        fetch(artifact(refused, f"{base}/missing.bin", sha256=None), progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert f"place model.pth at {home / 'checkpoints' / 'test' / 'model' / 'model.pth'} (sha256 unknown)" in message
    assert f"download it by hand from {refused} or {base}/missing.bin" in message
    assert "404" in message
    assert leftovers(home) == []


def test_offline_env_gives_one_line_with_path_and_hash(
    server: _Server, base: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KDREPRO_OFFLINE", "1")
    with pytest.raises(DownloadError) as err:
        fetch(artifact(f"{base}/good.bin", "gdrive-folder:1vtNwxbHHvJnbFMwjD8oyjjW0lyHqfuRy"), progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert "offline" in message
    assert f"place model.pth at {home / 'checkpoints' / 'test' / 'model' / 'model.pth'}" in message
    assert f"sha256 {GOOD_SHA}" in message
    assert f"{base}/good.bin or https://drive.google.com/drive/folders/1vtNwxbHHvJnbFMwjD8oyjjW0lyHqfuRy" in message
    assert server.requests == []


def test_offline_argument_and_registered_name(home: Path) -> None:
    with pytest.raises(DownloadError) as err:
        fetch("deit/regnety_160", offline=True)
    message = str(err.value)
    assert str(home / "checkpoints" / "deit" / "regnety_160" / "regnety_160-a5fe301d.pth") in message
    assert "(sha256 prefix a5fe301d)" in message
    assert "https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth" in message


def test_offline_still_returns_a_cached_file(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = fetch(artifact(f"{base}/good.bin"), progress=False)
    monkeypatch.setenv("KDREPRO_OFFLINE", "true")
    assert fetch(artifact(f"{base}/good.bin"), progress=False) == path


def test_existing_target_with_wrong_hash_is_reported_not_overwritten(server: _Server, base: str, home: Path) -> None:
    target = target_path(artifact(f"{base}/good.bin"))
    target.parent.mkdir(parents=True)
    target.write_bytes(BAD)
    with pytest.raises(ChecksumError, match=f"has sha256 {BAD_SHA}, expected {GOOD_SHA}"):
        fetch(artifact(f"{base}/good.bin"), progress=False)
    assert target.read_bytes() == BAD
    assert server.requests == []


def test_existing_target_with_wrong_size_is_reported(server: _Server, base: str) -> None:
    target = target_path(artifact(f"{base}/good.bin"))
    target.parent.mkdir(parents=True)
    target.write_bytes(GOOD[:-1])
    with pytest.raises(ChecksumError, match=f"has {len(GOOD) - 1} bytes, expected {len(GOOD)}"):
        fetch(artifact(f"{base}/good.bin", size=len(GOOD)), progress=False)
    assert server.requests == []


def test_dest_dir_places_the_file_at_the_originals_path(base: str, tmp_path: Path) -> None:
    dest = tmp_path / "save" / "models" / "resnet32x4_vanilla"
    path = fetch(artifact(f"{base}/good.bin"), dest_dir=dest, file_name="ckpt_epoch_240.pth", progress=False)
    assert path == dest / "ckpt_epoch_240.pth"
    assert path.read_bytes() == GOOD


def test_drive_id_goes_through_gdown(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []

    def fake_download(*, id: str, output: str, quiet: bool) -> str:
        calls.append({"id": id, "output": output, "quiet": quiet})
        Path(output).write_bytes(GOOD)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    path = fetch(artifact("gdrive:1iJ5BuXMSRofnztZOyJVdNxdnszHT9rXH", f"{base}/bad.bin"), progress=False)
    assert path.read_bytes() == GOOD
    assert calls == [{"id": "1iJ5BuXMSRofnztZOyJVdNxdnszHT9rXH", "output": f"{path}.part", "quiet": True}]


def test_gdown_failure_falls_through_to_the_next_mirror(
    server: _Server, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_download(*, id: str, output: str, quiet: bool) -> str:
        Path(output).write_bytes(GOOD[:10])
        raise gdown.exceptions.FileURLRetrievalError(f"cannot retrieve {id}\nsecond line")

    monkeypatch.setattr(gdown, "download", failing_download)
    path = fetch(artifact("gdrive:1iJ5BuXMSRofnztZOyJVdNxdnszHT9rXH", f"{base}/good.bin"), progress=False)
    assert path.read_bytes() == GOOD
    assert server.requests == ["/good.bin"]


def test_drive_url_source_and_gdown_giving_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file_id = "1iJ5BuXMSRofnztZOyJVdNxdnszHT9rXH"
    monkeypatch.setattr(gdown, "download", lambda *, id, output, quiet: None)
    with pytest.raises(DownloadError, match="gdown returned no file"):
        fetch(f"gdrive:{file_id}", file_name="models.zip", progress=False)
    assert leftovers(home) == []

    def fake_download(*, id: str, output: str, quiet: bool) -> str:
        Path(output).write_bytes(GOOD)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    path = fetch(f"gdrive:{file_id}", file_name="models.zip", progress=False)
    assert path == home / "checkpoints" / "url" / "gdrive" / file_id / "models.zip"


def test_drive_folder_is_never_fetched_automatically(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    def unexpected(**kwargs: object) -> str:
        raise AssertionError(f"gdown called with {kwargs}")

    monkeypatch.setattr(gdown, "download", unexpected)
    with pytest.raises(DownloadError) as err:
        fetch(artifact("gdrive-folder:1G8jv2If3lpFlnfnmGUFrrh6Lxhzdc6y-", sha256=None), progress=False)
    folder = "https://drive.google.com/drive/folders/1G8jv2If3lpFlnfnmGUFrrh6Lxhzdc6y-"
    assert f"{folder} is a Drive folder: download by hand" in str(err.value)
    assert leftovers(home) == []


def test_file_url_is_copied_and_verified(tmp_path: Path) -> None:
    source = tmp_path / "released" / "weights.pth"
    source.parent.mkdir()
    source.write_bytes(GOOD)
    path = fetch(source.as_uri(), dest_dir=tmp_path / "out", sha256=GOOD_SHA, progress=False)
    assert path == tmp_path / "out" / "weights.pth"
    assert path.read_bytes() == GOOD
    with pytest.raises(ChecksumError, match=GOOD_SHA):
        fetch(source.as_uri(), dest_dir=tmp_path / "other", sha256=BAD_SHA, progress=False)


def test_url_is_cached_under_its_host_and_folders(base: str, home: Path) -> None:
    path = fetch(f"{base}/good.bin", progress=False)
    assert path == home / "checkpoints" / "url" / base.removeprefix("http://") / "good.bin"


def test_plain_local_path_is_verified_and_returned_as_is(tmp_path: Path) -> None:
    local = tmp_path / "my_teacher.pth"
    local.write_bytes(GOOD)
    assert fetch(local) == local
    assert fetch(str(local), sha256=GOOD_SHA.upper()) == local
    with pytest.raises(ChecksumError, match=f"{local} has sha256 {GOOD_SHA}, expected {BAD_SHA}"):
        fetch(local, sha256=BAD_SHA)


def test_bad_arguments_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="deit/regnety_160"):
        fetch(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="not a hex digest"):
        fetch(tmp_path / "missing.pth", sha256="xyz")
    with pytest.raises(CheckpointError, match="pass file_name"):
        fetch("https://example.org/")


def test_kdrepro_home_defaults_to_the_user_cache(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    assert kdrepro_home() == home
    monkeypatch.delenv("KDREPRO_HOME")
    assert kdrepro_home() == Path(platformdirs.user_cache_dir("kdrepro"))


def test_cli_fetch_prints_the_path(base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", f"{base}/good.bin", "--dest-dir", str(tmp_path / "d"), "--quiet"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'd' / 'good.bin'}\n"


def test_cli_fetch_offline_error_is_one_line(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fetch", "repdistiller/resnet32x4_vanilla", "--offline"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: offline mode")
    assert err.count("\n") == 1
    assert str(home / "checkpoints" / "repdistiller" / "resnet32x4_vanilla" / "ckpt_epoch_240.pth") in err
    assert "sha256 unknown" in err
