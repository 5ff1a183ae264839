"""PCA-whitening learning (`utils.PCA.train_pca`) against the original (fixtures/pca), and the gld_pca_learn script
run on a fake GLDv2 with a fake Barlow Twins teacher file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from kdrepro_shared.errors import KdReproError
from whiten_mtd import gld_pca_learn_main
from whiten_mtd.datasets.fake_gld import write_fake_gldv2
from whiten_mtd.datasets.gld import GLDv2, read_image_ids
from whiten_mtd.gld_pca_learn_main import pca_transform, select_ids
from whiten_mtd.models.fake_weights import write_fake_weights
from whiten_mtd.models.pca_layer import load_pca_file
from whiten_mtd.models.teachers import teacher_models
from whiten_mtd.utils import PCA

FIXTURES = Path(__file__).parent / "fixtures/pca"
GOLDEN = torch.load(FIXTURES / "pca_golden.pt", weights_only=True)
BUFFERS = ["dim1", "dim2", "whit", "d", "v", "n_0", "mean", "dvt"]


def _learn(name: str) -> tuple[PCA, dict[str, torch.Tensor]]:
    original = torch.load(FIXTURES / f"pca_{name}_state.pt", weights_only=True)
    pca = PCA(dim1=int(original["dim1"]), dim2=int(original["dim2"]))
    pca.train_pca(GOLDEN[f"x_{name}"].clone())
    return pca, original


@pytest.mark.parity
def test_full_rank_pca_matches_original() -> None:
    pca, original = _learn("full")
    state = pca.state_dict()
    assert list(state) == BUFFERS
    for key in ["dim1", "dim2", "whit", "n_0"]:
        assert torch.equal(state[key], original[key]), key
    for key in ["mean", "d"]:
        torch.testing.assert_close(state[key], original[key], atol=1e-6, rtol=1e-5)
    # eigenvectors are defined up to sign: compare the projection row by row up to sign, then the outputs' Gram
    signs = torch.sign((state["dvt"] * original["dvt"]).sum(dim=1, keepdim=True))
    torch.testing.assert_close(state["dvt"] * signs, original["dvt"], atol=1e-4, rtol=1e-4)
    out = pca(GOLDEN["probe"])
    torch.testing.assert_close(out @ out.T, GOLDEN["full_out"] @ GOLDEN["full_out"].T, atol=1e-4, rtol=1e-4)


@pytest.mark.parity
def test_rank_deficient_pca_matches_original() -> None:
    """Rank 12 in 32 dims: 20 eigenvalues are floored (n_0 = 20); the leading 12 directions are well defined."""
    pca, original = _learn("low")
    state = pca.state_dict()
    assert int(state["n_0"]) == int(original["n_0"]) == 20
    torch.testing.assert_close(state["mean"], original["mean"], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(state["d"][-12:], original["d"][-12:], atol=1e-6, rtol=1e-4)
    lead, want = state["dvt"][:12], original["dvt"][:12]
    signs = torch.sign((lead * want).sum(dim=1, keepdim=True))
    torch.testing.assert_close(lead * signs, want, atol=1e-4, rtol=1e-4)


def test_whitened_training_data_has_identity_covariance_and_input_is_centred_in_place() -> None:
    generator = torch.Generator().manual_seed(5)
    x = torch.nn.functional.normalize(torch.randn(400, 16, generator=generator) * torch.arange(1, 17), dim=-1)
    pca = PCA(dim1=16, dim2=6)
    data = x.clone()
    pca.train_pca(data)
    torch.testing.assert_close(data, x - x.mean(0, keepdim=True))  # the original centres the caller's tensor
    y = pca(x)
    torch.testing.assert_close(y.T @ y / len(y), torch.eye(6), atol=1e-3, rtol=1e-3)
    probe = x[:3].clone()
    pca(probe)
    assert torch.equal(probe, x[:3]), "forward leaves its input untouched"


@pytest.mark.parity
def test_original_file_loads_strict_and_gives_the_same_output() -> None:
    original = torch.load(FIXTURES / "pca_full_state.pt", weights_only=True)
    pca = PCA(dim1=int(original["dim1"]), dim2=int(original["dim2"]))
    pca.load_state_dict(original, strict=True)
    torch.testing.assert_close(pca(GOLDEN["probe"]), GOLDEN["full_out"], atol=0, rtol=0)


def test_bad_shapes_are_clear_errors() -> None:
    with pytest.raises(KdReproError, match=r"shape \(n, 8\)"):
        PCA(dim1=8, dim2=4).train_pca(torch.randn(10, 6))
    with pytest.raises(KdReproError, match="--embed_dim <= 8"):
        PCA(dim1=8, dim2=9).train_pca(torch.randn(10, 8))


@pytest.fixture(scope="module")
def pca_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    weights = write_fake_weights(tmp_path_factory.mktemp("weights"), ["barlowtwins"])
    gld = tmp_path_factory.mktemp("gldv2")
    write_fake_gldv2(gld)
    return weights, gld


def test_script_learns_the_pca_of_the_teacher_descriptors(pca_data: tuple[Path, Path], tmp_path: Path) -> None:
    """gld_pca_learn on 20 of 33 fake images equals PCA.train_pca on the same crops' L2-normalised descriptors."""
    weights, gld = pca_data
    dump_to = tmp_path / "out/barlowtwins_pca.pt"
    argv = ["-t", "barlowtwins", "--imsize", "32", "--num_workers", "0", "--embed_dim", "16", "-b", "8", "-p", "1"]
    argv += ["--num_samples", "20", "--gld_root_path", str(gld), "--path_to_pretrained_weights", str(weights)]
    torch.manual_seed(0)
    gld_pca_learn_main.main([*argv, "--dump_to", str(dump_to)])
    learned = load_pca_file(dump_to)
    assert (int(learned.dim1), int(learned.dim2)) == (2048, 16)

    torch.manual_seed(0)  # same RNG stream: teacher init, then the crops in dataset order
    teacher = teacher_models["barlowtwins"](weights, gem_p=1.0).eval()
    ids = select_ids(read_image_ids(gld), 20)
    assert len(ids) == 20 and ids != read_image_ids(gld)[:20]
    dataset = GLDv2(gld / "train", ids, transform=pca_transform(32, "barlowtwins"))
    with torch.no_grad():
        feats = torch.cat([teacher(x) for x, _ in DataLoader(dataset, batch_size=8)])
    expected = PCA(dim1=2048, dim2=16)
    expected.train_pca(torch.nn.functional.normalize(feats, dim=-1))
    torch.testing.assert_close(learned.mean, expected.mean, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(learned.d[-16:], expected.d[-16:], atol=1e-6, rtol=1e-4)
    probe = torch.nn.functional.normalize(feats[:5], dim=-1)
    torch.testing.assert_close(learned(probe).abs(), expected(probe).abs(), atol=1e-3, rtol=1e-3)


def test_seed_flag_repeats_the_learned_pca(pca_data: tuple[Path, Path], tmp_path: Path) -> None:
    """[added] `--seed`: two runs draw the same crops, so the PCA files are equal (the original never seeds)."""
    weights, gld = pca_data
    argv = ["-t", "barlowtwins", "--imsize", "32", "--num_workers", "0", "--embed_dim", "16", "-b", "8", "-p", "1"]
    argv += ["--num_samples", "12", "--gld_root_path", str(gld), "--path_to_pretrained_weights", str(weights)]
    for run in ("a", "b"):
        torch.manual_seed(len(run) * 7 if run == "a" else 99)  # different global state before each run
        gld_pca_learn_main.main([*argv, "--seed", "3", "--dump_to", str(tmp_path / f"{run}.pt")])
    first, second = load_pca_file(tmp_path / "a.pt"), load_pca_file(tmp_path / "b.pt")
    assert torch.equal(first.mean, second.mean) and torch.equal(first.d, second.d)


def test_script_user_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in [
        (["-t", "mocov3"], "--imsize is required"),
        (["--imsize", "32"], "-t/--teacher is required"),
        (["-t", "mocov3", "--imsize", "32", "--gld_root_path", "nowhere"], "train_clean_ids.txt not found"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            gld_pca_learn_main.main([*argv, "--dump_to", "x.pt"])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    defaults = gld_pca_learn_main.get_args_parser().parse_args(["--dump_to", "x"])
    assert vars(defaults) == {
        "teacher": None,
        "imsize": None,
        "num_workers": 8,
        "world_size": 8,
        "dist_url": "tcp://localhost:1234",
        "rank": 0,
        "embed_dim": 512,
        "batch_size": 256,
        "p": 3,
        "num_samples": 10000,
        "gld_root_path": "/path/to/gldv2",
        "dump_to": "x",
        "path_to_pretrained_weights": "/path/to/pretrained_weights",
        "seed": None,
    }
