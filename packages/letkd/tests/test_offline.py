"""Offline target generation (faiss k-means, LDA + sub-class pipeline) against fixtures recorded from the original."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from letkd.distillation.algorithms.classification import offline
from letkd.distillation.algorithms.clustering import cluster_utils
from letkd.distillation.algorithms.subclass_decision import subclass_utils
from letkd.distillation.dataloaders.basic_dataloaders import SimpleDataloader

FIXTURES = Path(__file__).parent / "fixtures" / "offline"
pytestmark = pytest.mark.parity


def tiny_extractor() -> nn.Sequential:
    """The recorder's 3-stage extractor (stages of tanh-activated 3×3 convs), with its recorded weights."""

    def block(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.Tanh())

    net = nn.Sequential(
        block(3, 8, 2),
        nn.Sequential(block(8, 16, 2), block(16, 16, 1)),
        nn.Sequential(block(16, 16, 2), block(16, 16, 1)),
    )
    net.load_state_dict(torch.load(FIXTURES / "extractor.pt", weights_only=True))
    return net


def class_images(n: int, num_classes: int = 10) -> torch.utils.data.TensorDataset:
    """n 32×32 images whose mean colour depends on the label (label = index mod 10), as recorded."""
    rs = np.random.RandomState(2)
    labels = np.arange(n) % num_classes
    base = rs.randn(num_classes, 3, 1, 1).astype("float32")
    images = rs.randn(n, 3, 32, 32).astype("float32") * 0.5 + base[labels]
    return torch.utils.data.TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


def stand_in_algorithm(exp_dir: Path) -> Any:
    """What the offline methods read from their algorithm: networks, logger, curr_epoch and the checkpoint namer."""
    return SimpleNamespace(
        networks={"feature_extractor": tiny_extractor()},
        logger=logging.getLogger("test_offline"),
        curr_epoch="*",
        _get_net_checkpoint_filename=lambda key, epoch: str(exp_dir / f"{key}_net_epoch{epoch}"),
    )


def test_kmeans_matches_original() -> None:
    data = np.load(FIXTURES / "kmeans.npz")
    points = np.random.RandomState(1).rand(3000, 8).astype("float32")
    np.random.seed(0)
    kmeans = cluster_utils.Kmeans(16, preprocess=False)
    loss = kmeans.cluster(points, verbose=False)
    np.testing.assert_allclose(kmeans.centroids, data["centroids"], atol=1e-6)
    np.testing.assert_array_equal(kmeans.point2ids, data["point2ids"])
    np.testing.assert_array_equal(kmeans.cluster_size, data["cluster_size"])
    np.testing.assert_allclose(loss, data["loss"], rtol=1e-6)
    state = cluster_utils.initialize_vector_quantizer(kmeans.centroids, kmeans.cluster_size).state_dict()
    for key, value in state.items():
        np.testing.assert_allclose(value.numpy(), data[f"vq.{key}"], rtol=1e-6, atol=1e-6)


def test_kmeans_runs_all_iterations_despite_faiss_early_stop() -> None:
    points = np.zeros((400, 4), dtype="float32")  # a constant objective: faiss >= 1.8 would stop after 1 iteration
    points[:200] = 1.0
    np.random.seed(0)
    _, loss, centroids = cluster_utils.run_kmeans(points, 2)
    assert centroids.shape == (2, 4)
    assert loss == pytest.approx(0.0)


def test_apply_kmeans_to_dataset_matches_original(tmp_path: Path) -> None:
    loader = SimpleDataloader(class_images(200), batch_size=32, train=False, num_workers=0)
    np.random.seed(0)
    path = offline.apply_kmeans_to_dataset(stand_in_algorithm(tmp_path), loader, 8)
    assert Path(path).name == "vector_quantizer_kmeansK8_net_epoch*"
    state = torch.load(path, weights_only=True)
    meta = json.loads((FIXTURES / "kmeans_dataset.json").read_text(encoding="utf-8"))
    assert list(state) == meta["keys"]
    assert (state["epoch"], state["metric"]) == (meta["epoch"], meta["metric"])
    expected = np.load(FIXTURES / "kmeans_dataset.npz")
    assert list(state["network"]) == list(expected)
    for key, value in state["network"].items():
        np.testing.assert_allclose(value.numpy(), expected[key], rtol=1e-5, atol=1e-5)


def test_apply_sublass_matches_original(tmp_path: Path) -> None:
    expected = np.load(FIXTURES / "lda_pipeline.npz")
    algorithm = stand_in_algorithm(tmp_path)
    loader = SimpleDataloader(class_images(1250), batch_size=50, train=False, num_workers=0)
    np.random.seed(0)
    files = offline.apply_sublass(algorithm, loader, 9, 4, which_stages=2, directory=tmp_path)
    assert Path(files["centers"]).name == "centers_subclass_4_9.npy"
    for name in ("lda_model_scalings", "lda_model_xbar", "centers_subclass_4_9", "final_scores_4_9"):
        ours = np.load(tmp_path / f"{name}.npy")
        assert ours.dtype == expected[name].dtype, name
        np.testing.assert_allclose(ours, expected[name], rtol=1e-5, atol=1e-5, err_msg=name)
    # Second pass reuses LDA and centers; 19,984 rows exercises the original's 10,000-chunk remainder.
    (tmp_path / "final_scores_4_9.npy").unlink()
    loader = SimpleDataloader(class_images(1249), batch_size=50, train=False, num_workers=0)
    offline.apply_sublass(algorithm, loader, 9, 4, which_stages=2, directory=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "final_scores_4_9.npy"), expected["scores_reused"], atol=1e-12)


def test_hand_renamed_centers_are_reused_with_a_matching_score_name(tmp_path: Path) -> None:
    """A shipped ``centers_subclass_<S>.npy`` (no component suffix) is read, and its scores get the same style."""
    expected = np.load(FIXTURES / "lda_pipeline.npz")
    np.save(tmp_path / "lda_model_scalings.npy", expected["lda_model_scalings"])
    np.save(tmp_path / "lda_model_xbar.npy", expected["lda_model_xbar"])
    np.save(tmp_path / "centers_subclass_4.npy", expected["centers_subclass_4_9"])
    loader = SimpleDataloader(class_images(1249), batch_size=50, train=False, num_workers=0)
    files = offline.apply_sublass(stand_in_algorithm(tmp_path), loader, 9, 4, which_stages=2, directory=tmp_path)
    assert Path(files["scores"]).name == "final_scores_4.npy"
    assert not (tmp_path / "centers_subclass_4_9.npy").exists()
    np.testing.assert_allclose(np.load(files["scores"]), expected["scores_reused"], atol=1e-12)


def test_downscale_pools_the_inner_features() -> None:
    loader = SimpleDataloader(class_images(20), batch_size=10, train=False, num_workers=0)
    net = tiny_extractor()
    plain, _, labels = subclass_utils.extract_inner_features_from_dataset(net, loader.get_iterator(), 2)
    pooled, _, pooled_labels = subclass_utils.extract_inner_features_from_dataset(
        net, loader.get_iterator(), 2, downscale=True
    )
    assert plain.shape == (20 * 16, 16)
    assert pooled.shape == (20 * 4, 16)
    np.testing.assert_allclose(pooled.mean(0), plain.mean(0), atol=1e-6)  # a mean is invariant under avg pooling
    assert labels.tolist()[:16] == [0.0] * 16
    assert pooled_labels.tolist()[:4] == [0.0] * 4


def test_apply_nncenter_counts_nearest_prototypes() -> None:
    features = np.repeat(np.array([[0.0, 0.0], [1.0, 0.0], [0.9, 0.0]]), 10_000, axis=0)
    predictions = np.repeat(np.array([0.0, 1.0, 0.0]), 10_000)
    scores = subclass_utils.apply_NNCenter(features, np.array([[0.0, 0.0], [1.0, 0.0]]), predictions)
    np.testing.assert_allclose(scores, [[0.5, 0.5], [0.0, 1.0]])


@pytest.mark.gpu
def test_kmeans_gpu_index_is_used_when_faiss_sees_a_gpu() -> None:
    assert cluster_utils.gpu_available(), "faiss was built without GPU support or sees no GPU"
    index, resources = cluster_utils.flat_l2_index(8)
    assert resources is not None
    assert type(index).__name__ == "GpuIndexFlatL2"
