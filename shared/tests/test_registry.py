"""The artifact registry: the shipped artifacts.toml is well-formed and holds the papers' released files."""

from __future__ import annotations

import re
import runpy
import sys
import zipfile
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kdrepro_shared.checkpoints.__main__ import main
from kdrepro_shared.checkpoints.registry import (
    MIRROR_SCHEMES,
    PAPERS,
    Artifact,
    get_artifact,
    list_artifacts,
    mirror_link,
    registry_markdown,
)
from kdrepro_shared.errors import CheckpointError

SHARED = Path(__file__).resolve().parents[1]
TEACHERS = ["wrn_40_2", "resnet56", "resnet110", "resnet32x4", "vgg13", "ResNet50"]


def test_names_are_unique_namespaced_slugs() -> None:
    names = [a.name for a in list_artifacts()]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z_]+/[A-Za-z0-9_.-]+", n) for n in names), names


def test_every_entry_is_well_formed() -> None:
    for a in list_artifacts():
        assert a.paper, a.name
        assert set(a.paper) <= set(PAPERS), a.name
        assert a.mirrors, a.name
        for mirror in a.mirrors:
            scheme, _, rest = mirror.partition(":")
            assert scheme in MIRROR_SCHEMES, mirror
            if scheme in {"http", "https"}:
                assert urlsplit(mirror).netloc, mirror
            else:
                assert re.fullmatch(r"[A-Za-z0-9_-]{20,}", rest), mirror
        assert a.sha256 is None or re.fullmatch(r"[0-9a-f]{8,64}", a.sha256), a.name
        assert "/" not in a.file_name
        assert "\n" not in a.note


def test_every_paper_has_artifacts() -> None:
    for paper in PAPERS:
        assert list_artifacts(paper), paper
        assert all(paper in a.paper for a in list_artifacts(paper))


def test_repdistiller_teachers_serve_both_cifar_papers() -> None:
    for teacher in TEACHERS:
        a = get_artifact(f"repdistiller/{teacher}_vanilla")
        assert a.file_name == "ckpt_epoch_240.pth"
        assert a.paper == ("distillers_icd_rrd", "letkd")
        assert a.mirrors[0] == f"http://shape2prog.csail.mit.edu/repo/{teacher}_vanilla/ckpt_epoch_240.pth"
        assert a.expected_keys == ("epoch", "model", "accuracy", "optimizer")
        assert a.sha256 is None
    tar = get_artifact("repdistiller/cifar_teachers_tar")
    assert tar.members == tuple(f"cifar_teachers/{t}_vanilla/ckpt_epoch_240.pth" for t in TEACHERS)


def test_known_release_files() -> None:
    deit = get_artifact("deit/regnety_160")
    assert deit.mirrors[0] == "https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth"
    assert deit.sha256 == "a5fe301d"
    assert deit.file_name == "regnety_160-a5fe301d.pth"
    base = get_artifact("vidt/vidt_base_150")
    assert base.mirrors == ("https://github.com/naver-ai/vidt/releases/download/v0.1-vidt/vidt_base_150.pth",)
    assert base.weights_only is False
    assert len([a for a in list_artifacts("vkd") if a.name.startswith("vidt/")]) == 8
    assert get_artifact("vkd/deit_tiny").mirrors == ("gdrive-folder:1G8jv2If3lpFlnfnmGUFrrh6Lxhzdc6y-",)
    assert get_artifact("rkd_retina/models_zip").mirrors == ("gdrive:1iJ5BuXMSRofnztZOyJVdNxdnszHT9rXH",)
    assert get_artifact("whiten_mtd/mocov3").mirrors == ("gdrive-folder:1-9BOzGBCNY6FrGCmpefSfispWHfiVMOd",)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(CheckpointError, match="unknown artifact 'nope'") as err:
        get_artifact("nope")
    assert "repdistiller/resnet32x4_vanilla" in str(err.value)
    assert "deit/regnety_160" in str(err.value)


def test_unknown_paper_is_rejected() -> None:
    with pytest.raises(CheckpointError, match="valid papers"):
        list_artifacts("imagenet")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"mirrors": ("ftp://host/x.pth",)}, "must start with one of"),
        ({"mirrors": ("gdrive:",)}, "no Drive id"),
        ({"mirrors": ("https://host",)}, "no path"),
        ({"sha256": "A5FE301D"}, "hex"),
        ({"sha256": "abc"}, "hex"),
        ({"file_name": "save/x.pth"}, "plain file name"),
        ({"paper": ("imagenet",)}, "unknown paper"),
        ({"note": "two\nlines"}, "one line"),
        ({"size": 0}, "positive"),
    ],
)
def test_malformed_artifacts_are_rejected(change: dict, problem: str) -> None:
    fields = {"name": "t/x", "file_name": "x.pth", "paper": ("vkd",), "mirrors": ("https://h/x.pth",)} | change
    with pytest.raises(ValueError, match=problem):
        Artifact(**fields)


def test_mirror_links_are_browser_addresses() -> None:
    assert mirror_link("gdrive:abcdefghijkl") == "https://drive.google.com/file/d/abcdefghijkl/view"
    assert mirror_link("gdrive-folder:abcdefghijkl") == "https://drive.google.com/drive/folders/abcdefghijkl"
    assert mirror_link("https://h/x.pth") == "https://h/x.pth"


def test_markdown_table_has_one_row_per_artifact() -> None:
    lines = registry_markdown().splitlines()
    assert lines[0] == "| name | file | paper | sha256 | mirrors |"
    assert len(lines) == 2 + len(list_artifacts())
    row = next(line for line in lines if "`deit/regnety_160`" in line)
    assert "`a5fe301d`" in row
    assert "[dl.fbaipublicfiles.com](https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth)" in row
    assert "[Drive folder](https://drive.google.com/drive/folders/1vtNwxbHHvJnbFMwjD8oyjjW0lyHqfuRy)" in row
    assert len(registry_markdown("rkd_retina").splitlines()) == 3


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [a.name for a in list_artifacts()]
    assert main(["list", "--paper", "rkd_retina"]) == 0
    assert capsys.readouterr().out == "rkd_retina/models_zip\trkd_retina\tmodels.zip\t-\n"


def test_cli_list_markdown_as_module(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """What `python -m kdrepro_shared.checkpoints list --markdown --paper vkd` runs, in-process (no torch re-import)."""
    monkeypatch.setattr(sys, "argv", ["kdrepro_shared.checkpoints", "list", "--markdown", "--paper", "vkd"])
    monkeypatch.delitem(sys.modules, "kdrepro_shared.checkpoints.__main__")  # as in a fresh `python -m` run
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("kdrepro_shared.checkpoints", run_name="__main__")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == registry_markdown("vkd")


def test_cli_rejects_unknown_paper(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["list", "--paper", "imagenet"])
    assert "invalid choice" in capsys.readouterr().err


def test_registry_data_is_shipped_in_the_wheel(tmp_path: Path) -> None:
    assert resources.files("kdrepro_shared.checkpoints").joinpath("artifacts.toml").is_file()
    wheelbuilder = pytest.importorskip("hatchling.builders.wheel")
    wheel = next(iter(wheelbuilder.WheelBuilder(str(SHARED)).build(directory=str(tmp_path), versions=["standard"])))
    assert "kdrepro_shared/checkpoints/artifacts.toml" in zipfile.ZipFile(wheel).namelist()
