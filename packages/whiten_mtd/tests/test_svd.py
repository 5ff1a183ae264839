"""SVD metadata, samplers, similarity functions, evaluator and `svd_eval.py` against the original's recorded outputs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from kdrepro_shared.errors import DatasetLayoutError
from whiten_mtd.datasets.fake_svd import write_fake_svd
from whiten_mtd.datasets.svd.core import Frame, MetaData, TwoCropsTransform, Video, pca_learning_transform
from whiten_mtd.datasets.svd.eval import DistEvaluator, cal_sim_chamfer, cal_sim_max, cal_sim_mean, frame_mask
from whiten_mtd.datasets.svd.loader import DistributedFrameSampler, DistributedTestLoader
from whiten_mtd.models.distill_model import build_student
from whiten_mtd.models.fake_weights import write_fake_weights
from whiten_mtd.models.pca_layer import load_pca_file
from whiten_mtd.svd_distill_main import main as distill_main
from whiten_mtd.svd_eval_main import eval_transform, main
from whiten_mtd.svd_pca_learn_main import main as pca_main
from whiten_mtd.testing import fill_deterministic

FIXTURES = Path(__file__).parent / "fixtures" / "svd"


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((FIXTURES / "svd_golden.json").read_text())


@pytest.fixture(scope="module")
def svd_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recorder's fake SVD: the last candidate of every test query is (wrongly) labelled positive too."""
    path = write_fake_svd(
        tmp_path_factory.mktemp("svd"), n_query=4, candidates_per_query=3, positives=1, n_unlabeled=3,
        frames=(2, 4), noise=120, seed=0,
    )  # fmt: skip
    gt_file = Path(yaml.safe_load(path.read_text())["test_groundtruth"])
    lines = [line[:-1] + "1" if "_c2.mp4" in line else line for line in gt_file.read_text().splitlines()]
    gt_file.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def meta(svd_yaml: Path) -> MetaData:
    return MetaData(yaml.safe_load(svd_yaml.read_text()))


class Memo(torch.nn.Module):
    """The student, with outputs cached per input batch: every evaluator run sees the same frame batches."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.cache: dict[bytes, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = x.numpy().tobytes()
        if key not in self.cache:
            self.cache[key] = self.model(x)
        return self.cache[key].clone()


@pytest.fixture(scope="module")
def student() -> torch.nn.Module:
    return Memo(fill_deterministic(build_student("resnet18", 512, 1.0))).eval()


@pytest.mark.parity
def test_metadata_matches_original(golden: dict, meta: MetaData) -> None:
    want = golden["meta"]
    for name in ("query_ids", "labeled_ids", "unlabeled_ids", "all_video_ids", "train_ids", "test_query_ids"):
        assert getattr(meta, name) == want[name], name
    assert meta.test_labeled_ids == want["test_labeled_ids"]
    assert meta.test_groundtruth == want["test_groundtruth"]
    assert meta.train_groundtruth == want["train_groundtruth"]
    assert [list(p) for p in meta.train_pairs] == want["train_pairs"]
    assert [sorted(g) for g in meta.train_groups] == want["train_groups"]
    assert meta.frm_cnt == want["frm_cnt"]


@pytest.mark.parity
def test_train_groups_and_ids_on_crafted_truth(golden: dict, tmp_path: Path) -> None:
    want = golden["crafted_groups"]
    (tmp_path / "gt").write_text("\n".join(want["gt"]) + "\n")
    crafted = MetaData({"train_groundtruth": str(tmp_path / "gt")})
    assert [sorted(g) for g in crafted.train_groups] == want["groups"]
    assert crafted.train_ids == want["train_ids"]
    assert [list(p) for p in crafted.train_pairs] == want["pairs"]


@pytest.mark.parity
def test_frame_sampler_matches_original(golden: dict) -> None:
    ids = [f"v{i}" for i in range(11)]
    frm_cnt = {v: 3 + i for i, v in enumerate(ids)}
    for key, want in golden["frame_sampler"].items():
        world, rank = int(key[1]), int(key[-1])
        sampler = DistributedFrameSampler(rank, world, 2, ids, frm_cnt)
        got = []
        for epoch in (1, 2):
            sampler.set_epoch(epoch)
            got.append([[list(item) for item in batch] for batch in sampler])
        assert len(sampler) == want["len"]
        assert got == want["batches"], key


@pytest.mark.parity
def test_similarity_functions_match_original() -> None:
    want = torch.load(FIXTURES / "cal_sim.pt")
    mask = frame_mask(want["qlens"], want["clens"], want["sims"].shape[-1])
    sims = want["sims"]
    torch.testing.assert_close(cal_sim_chamfer(sims, mask), want["cf"], atol=0, rtol=0)
    torch.testing.assert_close(cal_sim_max(sims, mask), want["smx"], atol=0, rtol=0)
    torch.testing.assert_close(cal_sim_mean(sims, mask), want["sme"], atol=0, rtol=0)


@pytest.mark.parity
def test_augmentations_match_original() -> None:
    want = torch.load(FIXTURES / "transforms.pt")
    image = Image.fromarray(np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    for seed in (0, 1):
        torch.manual_seed(seed)
        random.seed(seed)
        views = torch.stack(TwoCropsTransform()(image))
        torch.manual_seed(seed)
        random.seed(seed)
        single = pca_learning_transform()(image)
        for key, got in ((f"two_{seed}", views), (f"pca_{seed}", single)):
            torch.testing.assert_close(got[..., :8, :8], want[key]["patch"], atol=1e-6, rtol=0)
            assert float(got.double().sum()) == pytest.approx(want[key]["sum"], rel=1e-6)
            assert float(got.double().abs().sum()) == pytest.approx(want[key]["abs"], rel=1e-6)


@pytest.mark.parity
@pytest.mark.parametrize(("sim_fn", "full"), [("cf", True), ("fme", True), ("fmx", True), ("sme", True),
                                              ("smx", True), ("cf", False)])  # fmt: skip
def test_evaluator_matches_original(golden: dict, meta: MetaData, student: torch.nn.Module, sim_fn: str, full: bool):
    want = golden["evaluator"][f"{sim_fn}_full{int(full)}"]
    video = Video(meta.frm_root_path, meta.frm_cnt, eval_transform(), 60, 1)
    loaders = DistributedTestLoader(
        video, meta.test_query_ids, meta.test_labeled_ids, meta.unlabeled_ids, batch_size=2, num_workers=0
    )
    evaluator = DistEvaluator(torch.device("cpu"), meta.test_groundtruth, [100, 2], 60)
    result = evaluator(student, loaders.query_loader, loaders.labeled_loader, loaders.unlabeled_loader, full, sim_fn)
    assert result == pytest.approx(want["res"], abs=1e-6)
    for qid, ranking in want["ranks"].items():
        got = evaluator.ranks[qid]
        assert [(c, lab) for _, c, lab in got] == [(c, lab) for _, c, lab in ranking]
        np.testing.assert_allclose([s for s, _, _ in got], [s for s, _, _ in ranking], atol=1e-5)


def test_dump_and_frame_dataset(meta: MetaData, student: torch.nn.Module, tmp_path: Path) -> None:
    video = Video(meta.frm_root_path, meta.frm_cnt, eval_transform(), max_frames=2, stride=1)
    loaders = DistributedTestLoader(video, meta.test_query_ids, meta.test_labeled_ids, [], batch_size=4, num_workers=0)
    evaluator = DistEvaluator(torch.device("cpu"), meta.test_groundtruth, [100], 2)
    evaluator(student, loaders.query_loader, loaders.labeled_loader, [], False, "cf", dump_to=tmp_path)
    records = json.loads((tmp_path / "ret_res.json").read_text())
    assert {r["qid"] for r in records} == set(meta.test_query_ids)
    assert all(len(r["positive"]) == 2 for r in records)
    frames = Frame(meta.frm_root_path, meta.frm_cnt, TwoCropsTransform())
    view1, view2, name = frames[(meta.train_ids[0], 1)]
    assert view1.shape == view2.shape == (3, 224, 224) and name == f"{meta.train_ids[0]}/0001.jpg"
    with pytest.raises(DatasetLayoutError, match="frame_count_file"):
        _ = MetaData({"frame_count_file": str(tmp_path / "none")}).frm_cnt


def test_svd_eval_script(svd_yaml: Path, student: torch.nn.Module, golden: dict, tmp_path: Path) -> None:
    ckpt = tmp_path / "mc_bt_to_r18.pt"
    state = {f"module.base_encoder.{k}": v for k, v in student.model.state_dict().items()}
    torch.save({"state_dict": state}, ckpt)
    argv = ["-a", "resnet18", "-dm", str(svd_yaml), "--sim_fn", "cf", "-r", str(ckpt), "--embed_dim", "512"]
    result = main([*argv, "--topk", "100", "2", "-b", "2", "--num_workers", "0"])
    assert result == pytest.approx(golden["evaluator"]["cf_full1"]["res"], abs=1e-6)
    with pytest.raises(SystemExit) as exit_info:
        main(["-dm", str(svd_yaml), "--num_workers", "0"])
    assert exit_info.value.code == 2


def test_script_flag_errors(svd_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Inputs the original crashed on end with one line and exit code 2."""

    runs = (
        (distill_main, ["-ts", "mocov3", "-c", str(tmp_path / "ck"), "-dm", str(svd_yaml)], "mobilenet_v2"),
        (distill_main, ["-a", "resnet18", "-ts", "moco", "-c", str(tmp_path / "ck")], "unknown teachers"),
        (distill_main, ["-a", "resnet18", "-ts", "mocov3", "-c", str(tmp_path), "-s", "best"], "fusion strategy"),
        (pca_main, ["--dump_to", str(tmp_path / "pca.pt")], "-t/--teacher is required"),
    )
    for entry, argv, message in runs:
        with pytest.raises(SystemExit) as exit_info:
            entry(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


@pytest.fixture(scope="module")
def svd_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fake MoCo v3 / Barlow Twins files and their 512-d PCA files in the released layout."""

    return write_fake_weights(tmp_path_factory.mktemp("weights"), ["mocov3", "barlowtwins"])


@pytest.mark.slow
def test_svd_distill_trains_resumes_and_evaluates(svd_yaml: Path, svd_weights: Path, tmp_path: Path) -> None:
    """Reconstructed svd_distill: an epoch, a snapshot, a resumed second epoch; svd_eval reads the snapshot."""

    ckpt_dir = tmp_path / "ck"
    argv = ["-a", "resnet18", "-ts", "mocov3", "barlowtwins", "-c", str(ckpt_dir), "-dm", str(svd_yaml), "-b", "4"]
    argv += ["--num_workers", "0", "--path_to_pretrained_weights", str(svd_weights), "--snapshot_step", "1"]
    argv += ["--no_imagenet_init", "--lr", "1e-3"]
    distill_main([*argv, "--epochs", "1"])
    first = torch.load(ckpt_dir / "checkpoint_1.pt")
    assert set(first) == {"epoch", "state_dict", "optimizer", "lr_scheduler", "loss_fn"} and first["epoch"] == 1
    assert len(first["state_dict"]) == 122 and all(k.startswith("module.base_encoder.") for k in first["state_dict"])
    assert first["lr_scheduler"]["T_max"] == 2  # 8 training videos, 4 per batch
    assert int(first["loss_fn"]["pos_win_count"].sum()) == 2 * 2 * 4
    distill_main([*argv, "--epochs", "2", "-r", str(ckpt_dir / "checkpoint_1.pt")])
    second = torch.load(ckpt_dir / "checkpoint_2.pt")
    assert second["epoch"] == 2 and int(second["loss_fn"]["pos_win_count"].sum()) == 2 * 2 * 2 * 4
    assert yaml.safe_load((ckpt_dir / "config.yaml").read_text())["teachers"] == ["mocov3", "barlowtwins"]
    result = main(["-a", "resnet18", "-dm", str(svd_yaml), "--sim_fn", "cf", "-r", str(ckpt_dir / "checkpoint_2.pt")])
    assert set(result) == {"top-100", "top-inf"} and 0.0 < result["top-inf"] <= 1.0


@pytest.mark.slow
def test_svd_pca_learn_writes_a_pca_file(svd_yaml: Path, svd_weights: Path, tmp_path: Path) -> None:

    dump = tmp_path / "mocov3_pca_16d.pt"
    pca_main(["-t", "mocov3", "--dump_to", str(dump), "-dm", str(svd_yaml), "-b", "8", "--num_workers", "0",
              "--embed_dim", "16", "--path_to_pretrained_weights", str(svd_weights)])  # fmt: skip
    layer = load_pca_file(dump)
    assert (int(layer.dim1), int(layer.dim2)) == (2048, 16) and layer.dvt.shape == (16, 2048)
    assert torch.isfinite(layer.dvt).all()


@pytest.mark.gpu
def test_svd_eval_on_cuda(svd_yaml: Path, student: torch.nn.Module, golden: dict, tmp_path: Path) -> None:
    """On a GPU machine svd_eval runs on CUDA (broadcasts on the nccl device); the CPU-recorded mAPs still hold."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    ckpt = tmp_path / "student.pt"
    torch.save({"state_dict": {f"module.base_encoder.{k}": v for k, v in student.model.state_dict().items()}}, ckpt)
    for sim_fn in ("cf", "fme"):
        argv = ["-a", "resnet18", "-dm", str(svd_yaml), "--sim_fn", sim_fn, "-r", str(ckpt), "--topk", "100", "2"]
        result = main([*argv, "-b", "2", "--num_workers", "0"])
        assert result == pytest.approx(golden["evaluator"][f"{sim_fn}_full1"]["res"], abs=1e-6)
