"""The revisitop dataset reader, the fake writers, multi-scale descriptors and the two search backends."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as T

from kdrepro_shared.errors import DatasetLayoutError, KdReproError
from whiten_mtd.datasets import oxford_paris
from whiten_mtd.datasets.fake_revisitop import (
    write_fake_revisitop,
    write_fake_revisitop1m,
    write_revisitop_from_labels,
)
from whiten_mtd.models.distill_model import build_student
from whiten_mtd.oxford_paris_eval_main import multiscale_feature, rank_and_score
from whiten_mtd.testing import fill_deterministic
from whiten_mtd.utils import PCA

FIXTURES = Path(__file__).parent / "fixtures" / "eval"


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((FIXTURES / "oxford_eval.json").read_text())


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("revisitop")
    write_fake_revisitop(root, "roxford5k", n_db=20, n_query=4, seed=0)
    write_fake_revisitop(root, "rparis6k", n_db=20, n_query=4, seed=3)
    write_fake_revisitop1m(root, n=10, seed=1)
    return root


@pytest.mark.parity
def test_dataset_matches_original(golden: dict, data_root: Path) -> None:
    want = golden["dataset"]
    query = oxford_paris.OxfordParisDataset(data_root, "roxford5k", "query", transform=T.ToTensor())
    database = oxford_paris.OxfordParisDataset(data_root, "roxford5k", "database", T.ToTensor(), imsize=64)
    assert sorted(query.cfg) == want["cfg_keys"]
    assert (len(query), len(database)) == (want["len_query"], want["len_db"])
    assert [str(Path(query.path(i)).relative_to(data_root)) for i in range(len(query))] == want["query_paths"]
    items = [query[i] for i in range(len(query))]
    assert [idx for _, idx in items] == list(range(len(query)))
    assert [list(t.shape) for t, _ in items] == want["query_shapes"]  # whole queries: no bbx crop
    np.testing.assert_allclose([float(t.double().sum()) for t, _ in items], want["query_sums"], rtol=1e-12)
    db_items = [database[i][0] for i in range(len(database))]
    assert [list(t.shape) for t in db_items] == want["db_imsize64_shapes"]
    np.testing.assert_allclose([float(t.double().sum()) for t in db_items], want["db_imsize64_sums"], rtol=1e-12)
    r1m = oxford_paris.OxfordParisDataset(data_root, "revisitop1m", "distractor")
    assert [str(Path(r1m.path(i)).relative_to(data_root)) for i in range(len(r1m))] == want["r1m_paths"]
    assert r1m.cfg["qimlist"] == [] and r1m[0][0].size == (96, 72)


def test_crop_query_is_opt_in(data_root: Path) -> None:
    cropped = oxford_paris.OxfordParisDataset(data_root, "roxford5k", "query", crop_query=True)
    bbx = cropped.cfg["gnd"][0]["bbx"]
    assert cropped[0][0].size == (round(bbx[2] - bbx[0]), round(bbx[3] - bbx[1]))
    whole = oxford_paris.OxfordParisDataset(data_root, "roxford5k", "query")
    assert whole[0][0].size == (96, 72)
    assert oxford_paris.OxfordParisDataset(data_root, "roxford5k", "database", crop_query=True)[0][0].size == (96, 72)


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"gnd_roxford5k\.pkl"):
        oxford_paris.configdataset("roxford5k", tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"revisitop1m\.txt"):
        oxford_paris.configdataset("revisitop1m", tmp_path)
    with pytest.raises(KdReproError, match="expected one of"):
        oxford_paris.configdataset("holidays", tmp_path)
    with pytest.raises(KdReproError, match="expected one of"):
        oxford_paris.protocol_gnd([], "extreme")


def test_writer_layout(data_root: Path) -> None:
    with (data_root / "rparis6k" / "gnd_rparis6k.pkl").open("rb") as file:
        gnd = pickle.load(file)
    assert set(gnd) == {"imlist", "qimlist", "gnd"}
    assert gnd["imlist"][0] == "paris_db_0000" and len(gnd["qimlist"]) == 4
    assert all((data_root / "rparis6k" / "jpg" / f"{name}.jpg").is_file() for name in gnd["imlist"] + gnd["qimlist"])
    entry = gnd["gnd"][1]
    assert set(entry) == {"bbx", "easy", "hard", "junk"}
    assert not set(entry["easy"]) & set(entry["hard"]) and not set(entry["junk"]) & set(entry["easy"])
    assert gnd["gnd"][0]["easy"] == [] and gnd["gnd"][-1]["hard"] == []


def test_writer_from_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [T.ToPILImage()(torch.from_numpy(rng.random((3, 16, 16), dtype=np.float32))) for _ in range(12)]
    labels = [i % 2 for i in range(12)]
    folder = write_revisitop_from_labels(tmp_path, "roxford5k", images, labels, queries_per_label=1, seed=0)
    cfg = oxford_paris.configdataset("roxford5k", tmp_path)
    assert folder == tmp_path / "roxford5k" and (cfg["n"], cfg["nq"]) == (10, 2)
    for entry in cfg["gnd"]:
        assert (len(entry["easy"]), len(entry["hard"]), len(entry["junk"])) == (2, 2, 1)


@pytest.mark.parity
def test_multiscale_feature_matches_original() -> None:
    want = torch.load(FIXTURES / "multiscale.pt")
    student = fill_deterministic(build_student("resnet18", 512, 3.0)).eval()
    pca = PCA(512, 16)
    pca.mean.copy_(want["pca_mean"])
    pca.dvt = want["pca_dvt"].clone()
    with torch.no_grad():
        torch.testing.assert_close(student(want["x"]), want["single"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(multiscale_feature(want["x"], student), want["multiscale"], atol=1e-5, rtol=1e-5)
        got = multiscale_feature(want["x"], student, pca_wtn=pca)
    torch.testing.assert_close(got, want["multiscale_pca"], atol=1e-5, rtol=1e-5)


def test_faiss_and_torch_search_agree() -> None:
    gen = torch.Generator().manual_seed(0)
    database = torch.nn.functional.normalize(torch.randn(3000, 64, generator=gen), dim=1)
    queries = torch.nn.functional.normalize(torch.randn(37, 64, generator=gen), dim=1)
    dense = oxford_paris.rank_database(database, queries, backend="torch")
    flat = oxford_paris.rank_database(database, queries, backend="faiss", query_chunk=8)
    assert dense.shape == flat.shape == (3000, 37)
    # faiss and torch round inner products differently, so only exact near-ties (|delta sim| < 1e-6) may swap
    sim = (database @ queries.T).numpy()
    rows, cols = np.nonzero(dense != flat)
    assert len(rows) < 20
    np.testing.assert_allclose(sim[dense[rows, cols], cols], sim[flat[rows, cols], cols], atol=1e-6, rtol=0)
    rng = np.random.default_rng(0)
    gnd = [
        {"easy": rng.choice(3000, 5, replace=False), "hard": rng.choice(3000, 3, replace=False), "junk": []}
        for _ in range(37)
    ]
    by_torch = rank_and_score(queries, database, gnd, "torch")
    by_faiss = rank_and_score(queries, database, gnd, "faiss")
    for setup in oxford_paris.SETUPS:
        assert by_torch[setup][0] == by_faiss[setup][0]
        np.testing.assert_array_equal(by_torch[setup][1], by_faiss[setup][1])
    with pytest.raises(KdReproError, match="torch or faiss"):
        oxford_paris.rank_database(database, queries, backend="annoy")
