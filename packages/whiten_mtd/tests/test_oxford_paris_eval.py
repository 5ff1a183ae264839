"""The real `oxford_paris_eval.py` on tiny revisitop data against the original evaluation's recorded numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from whiten_mtd.datasets.fake_revisitop import write_fake_revisitop, write_fake_revisitop1m
from whiten_mtd.models.distill_model import build_student
from whiten_mtd.oxford_paris_eval_main import main
from whiten_mtd.testing import fill_deterministic

PACKAGE = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "fixtures" / "eval" / "oxford_eval.json"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Fake ROxf/RPar/R1M and a student checkpoint in the released layout (module.base_encoder.*)."""
    root = tmp_path_factory.mktemp("eval")
    data = root / "datasets"
    write_fake_revisitop(data, "roxford5k", n_db=20, n_query=4, seed=0)
    write_fake_revisitop(data, "rparis6k", n_db=20, n_query=4, seed=3)
    write_fake_revisitop1m(data, n=10, seed=1)
    student = fill_deterministic(build_student("resnet18", 512, 3.0))
    ckpt = root / "checkpoint_200.pt"
    state = {f"module.base_encoder.{k}": v for k, v in student.state_dict().items()}
    torch.save({"epoch": 200, "state_dict": state}, ckpt)
    return data, ckpt


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


def _check(results: dict, want: dict) -> None:
    for setup, key in (("easy", "E"), ("medium", "M"), ("hard", "H")):
        mean_ap, mean_pr = results[setup]
        assert mean_ap == pytest.approx(want[key]["map"], abs=1e-9), setup
        assert list(mean_pr) == pytest.approx(want[key]["pr"], abs=1e-9), setup


@pytest.mark.parity
@pytest.mark.parametrize(
    ("dataset", "extra", "key"),
    [
        ("roxford5k", [], "roxford5k_ms0"),
        ("roxford5k", ["-ms"], "roxford5k_ms1"),
        ("roxford5k", ["-ms", "--plus1m", "--search", "faiss"], "roxford5k_ms1_plus1m"),
    ],
)
def test_student_eval_matches_original(setup: tuple[Path, Path], golden: dict, dataset: str, extra: list, key: str):
    data, ckpt = setup
    argv = ["-a", "resnet18", "-r", str(ckpt), "-dp", str(data), "-d", dataset, "--num_workers", "0", "-p", "3"]
    _check(main([*argv, *extra]), golden[key])


@pytest.mark.slow
@pytest.mark.parity
def test_script_runs_as_in_readme(setup: tuple[Path, Path], golden: dict) -> None:
    """The README command, as a subprocess from the package folder: M/H lines, then the extra Easy line."""
    data, ckpt = setup
    cmd = [sys.executable, "oxford_paris_eval.py", "-a", "resnet18", "-r", str(ckpt), "-dp", str(data)]
    cmd += ["-d", "rparis6k", "--embed_dim", "512", "-ms", "-p", "3", "--num_workers", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=PACKAGE, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    want = golden["rparis6k_ms1"]
    m, h = round(want["M"]["map"] * 100, 2), round(want["H"]["map"] * 100, 2)
    assert f">> rparis6k: mAP M: {m}, H: {h}" in done.stderr
    assert ">> rparis6k: mP@k[ 1  5 10] M: [" in done.stderr
    assert ">> rparis6k: mAP E: " in done.stderr


def test_user_errors(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = setup
    for argv, message in (
        (["-a", "resnet18", "-t", "mocov3"], "mutually exclusive"),
        ([], "nothing to evaluate"),
        (["-a", "resnet18", "-r", str(tmp_path / "missing.pt"), "-dp", str(data)], "missing.pt"),
        (["-a", "resnet18", "-dp", str(tmp_path)], "gnd_roxford5k.pkl"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--num_workers", "0"])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


@pytest.mark.gpu
def test_cuda_eval_matches_original(setup: tuple[Path, Path], golden: dict) -> None:
    """On a GPU machine the script runs on CUDA (nccl group of one); the recorded CPU numbers still hold."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    data, ckpt = setup
    results = main(["-a", "resnet18", "-r", str(ckpt), "-dp", str(data), "-ms", "--num_workers", "0"])
    _check(results, golden["roxford5k_ms1"])


@pytest.mark.slow
def test_teacher_eval_with_pca(setup: tuple[Path, Path], tmp_path: Path) -> None:
    """`-t mocov3 --pca` (the original called the PCA loader without its path): L2 -> PCA -> L2 descriptors."""
    from whiten_mtd.models.fake_weights import write_fake_weights

    data, _ = setup
    weights = write_fake_weights(tmp_path / "weights", ["mocov3"])
    argv = ["-t", "mocov3", "-dp", str(data), "-p", "1", "--pca", "--path_to_pretrained_weights", str(weights)]
    results = main([*argv, "--imsize", "64", "--num_workers", "0"])
    assert set(results) == {"easy", "medium", "hard"}
    assert all(0.0 <= mean_ap <= 1.0 for mean_ap, _ in results.values())
