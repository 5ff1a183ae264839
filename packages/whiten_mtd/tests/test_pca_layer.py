"""The PCA-whitening layer files: names under pca_weights/, the eight-buffer format, loading, forward (0cd5887)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kdrepro_shared.checkpoints import get_artifact, save
from kdrepro_shared.errors import CheckpointError, KdReproError
from whiten_mtd.models.fake_weights import write_fake_pca
from whiten_mtd.models.pca_layer import PCA_BUFFERS, load_pca_file, pca_file_name, pca_layers, pca_path
from whiten_mtd.utils import PCA

FIXTURES = Path(__file__).parent / "fixtures" / "models"
ORIGINAL_FILE = FIXTURES / "pca_original_64to16.pt"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "outputs.npz") as data:
        return dict(data)


def unit_rows(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


@pytest.mark.parity
def test_original_file_loads_strictly_and_whitens_the_same(expected: dict[str, np.ndarray]) -> None:
    layer = load_pca_file(ORIGINAL_FILE)
    assert (int(layer.dim1), int(layer.dim2), float(layer.whit)) == (64, 16, 0.5)
    y = unit_rows(5, 64, seed=9)
    before = y.clone()
    np.testing.assert_allclose(layer(y).numpy(), expected["pca_original/forward"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, before)  # unlike the original, the caller's tensor is not centred in place


def test_saved_file_has_the_original_format(tmp_path: Path) -> None:
    original = torch.load(ORIGINAL_FILE, weights_only=True)
    layer = load_pca_file(ORIGINAL_FILE)
    save(tmp_path / "copy.pt", layer.state_dict(), meta=False)
    copy = torch.load(tmp_path / "copy.pt", weights_only=True)
    assert list(copy) == list(original) == list(PCA_BUFFERS)
    for key in PCA_BUFFERS:
        assert copy[key].dtype == original[key].dtype and copy[key].shape == original[key].shape
        torch.testing.assert_close(copy[key], original[key], rtol=0, atol=0)


def test_pca_whitens_the_learning_set() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(2000, 32, generator=g) @ torch.randn(32, 32, generator=g), dim=-1)
    layer = PCA(dim1=32, dim2=8)
    layer.train_pca(x.clone())
    y = layer(x)
    torch.testing.assert_close(y.T @ y / len(x), torch.eye(8), atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    ("teacher", "dim", "name"),
    [
        ("resnet101_gem", 512, "resnet101_gem_pca_512d_gldv2_512x512_p3_randcrop.pt"),
        ("resnet101_ap_gem", 256, "resnet101_ap_gem_pca_256d_gldv2_512x512_p3_randcrop.pt"),
        ("resnet101_solar", 512, "resnet101_solar_pca_512d_gldv2_512x512_p3_randcrop.pt"),
        ("resnet101_delg", 128, "resnet101_delg_pca_128d_gldv2_512x512_p3_randcrop.pt"),
        ("resnet101_dolg", 512, "resnet101_dolg_pca_512d_gldv2_512x512_p3_global_randcrop.pt"),
        ("mocov3", 256, "mocov3_pca_512d_svd_224x224_p1.pt"),
        ("barlowtwins", 512, "barlowtwins_pca_512d_svd_224x224_p1.pt"),
    ],
)
def test_file_names(teacher: str, dim: int, name: str) -> None:
    assert pca_file_name(teacher, dim) == name
    assert pca_path("/w", teacher, dim) == Path("/w/pca_weights") / name
    if dim == 512:
        assert get_artifact(f"whiten_mtd/pca_{teacher}").file_name == name


def test_unknown_teacher() -> None:
    with pytest.raises(KdReproError, match="valid: mocov3, barlowtwins, resnet101_gem"):
        pca_file_name("resnet50")


def test_loader_by_teacher(tmp_path: Path) -> None:
    write_fake_pca("resnet101_delg", tmp_path, embed_dim=128)
    layer = pca_layers["resnet101_delg"](tmp_path, embed_dim=128)
    assert (int(layer.dim1), int(layer.dim2)) == (512, 128)
    assert layer(unit_rows(3, 512, seed=1)).shape == (3, 128)


def test_missing_released_file_names_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        pca_layers["resnet101_gem"](tmp_path)
    message = str(err.value)
    assert "\n" not in message and "resnet101_gem_pca_512d_gldv2_512x512_p3_randcrop.pt" in message
    assert f"fetch whiten_mtd/pca_resnet101_gem --dest-dir {tmp_path / 'pca_weights'}" in message


def test_missing_unreleased_dim_says_how_to_learn_it(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"learn it with gld_pca_learn\.py -t resnet101_dolg"):
        pca_layers["resnet101_dolg"](tmp_path, embed_dim=64)


def test_not_a_pca_file(tmp_path: Path) -> None:
    save(tmp_path / "x.pt", {"state_dict": {}}, meta=False)
    with pytest.raises(CheckpointError, match="is not a PCA file"):
        load_pca_file(tmp_path / "x.pt")
