"""letKD's two teacher targets and their losses vs the original (adagorgun/letKD-framework @ 4fb2289).

Penultimate: the k-means codebook's soft assignments softmax(−‖f − ρ_k‖²) and the dense KL (QuEST). Intermediate:
the teacher's sub-class decision rows (LDA → nearest sub-class of the label → score-table row) and their KL.
Golden values: fixtures/value_layers/layers.pt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdrepro_shared.errors import KdReproError
from letkd.distillation import criterions
from letkd.distillation.algorithms.classification.classification_quest_value import quest_dense_prediction
from letkd.distillation.architectures.miscellaneous import valueLayer_subclass, vector_quantization
from letkd.testing import fake_vq_state, fill_deterministic, generator, write_fake_lda

FIXTURE = Path(__file__).parent / "fixtures" / "value_layers" / "layers.pt"
VQ_OPT = {"num_embeddings": 256, "embedding_dim": 64, "commitment_cost": 0.25, "decay": 0.99, "epsilon": 1e-5}


@pytest.fixture(scope="module")
def golden() -> dict:
    return torch.load(FIXTURE, weights_only=True)


def make_vq(temperature: float | None = 1) -> vector_quantization.VectorQuantizerEMA:
    vq = vector_quantization.create_model(VQ_OPT | {"temperature": temperature})
    vq.load_state_dict(fake_vq_state(256, 64, seed=11))
    return vq.eval()


def teacher_features() -> torch.Tensor:
    return torch.rand(2, 64, 8, 8, generator=generator(3)) * 2


@pytest.mark.parity
def test_vq_soft_targets_match_original(golden: dict) -> None:
    vq = make_vq()
    assert list(vq.state_dict()) == golden["vq/keys"]
    _, loss, perplexity, indices, encodings, mean_assign = vq(teacher_features(), True)
    assert encodings.shape == (2, 8, 8, 256)
    assert torch.equal(indices, golden["vq/indices"])
    torch.testing.assert_close(encodings[0], golden["vq/encodings_first"], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(encodings.max(-1)[0], golden["vq/encodings_rowmax"], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(
        encodings.double().sum((0, 1, 2)).float(), golden["vq/encodings_sum"], atol=1e-4, rtol=1e-5
    )
    for name, value in (("loss", loss), ("perplexity", perplexity), ("mean_assign", mean_assign)):
        torch.testing.assert_close(value, golden[f"vq/{name}"], atol=1e-5, rtol=1e-5)


def test_vq_targets_are_softmax_of_negative_squared_distances() -> None:
    vq = make_vq()
    features = teacher_features()
    flat = features.permute(0, 2, 3, 1).reshape(-1, 64)
    expected = F.softmax(-(torch.cdist(flat.double(), vq._embedding.weight.double()) ** 2), dim=1).float()
    encodings = vq(features, True)[4]
    torch.testing.assert_close(encodings.reshape(-1, 256), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parity
def test_vq_ema_update_in_train_mode_matches_original(golden: dict) -> None:
    vq = make_vq().train()
    vq(teacher_features())
    torch.testing.assert_close(vq._embedding.weight.detach(), golden["vq_train/embedding"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(vq._ema_cluster_size, golden["vq_train/cluster_size"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(vq._ema_w.detach(), golden["vq_train/ema_w"], atol=1e-4, rtol=1e-5)


def test_vq_needs_a_temperature_for_soft_targets() -> None:
    with pytest.raises(KdReproError, match="needs a temperature"):
        make_vq(temperature=None)(teacher_features(), True)
    with pytest.raises(KdReproError, match="positive number"):
        vector_quantization.create_model(VQ_OPT | {"temperature": -1})


@pytest.mark.parity
def test_penultimate_kl_matches_original(golden: dict) -> None:
    targets = make_vq()(teacher_features(), True)[4]
    scores = torch.randn(2, 256, 8, 8, generator=generator(4))
    loss, hard, record = quest_dense_prediction([scores], [targets], {})
    torch.testing.assert_close(loss, golden["quest/loss"], atol=1e-5, rtol=1e-5)
    assert record == pytest.approx(golden["quest/record"], abs=1e-5)
    assert list(record) == ["Accur_vword", "loss_quest"]
    rows = targets.reshape(-1, 256)
    by_hand = (
        rows * (rows.clamp_min(1e-30).log() - F.log_softmax(scores.permute(0, 2, 3, 1).reshape(-1, 256), 1))
    ).sum()
    torch.testing.assert_close(loss, by_hand / rows.shape[0], atol=1e-5, rtol=1e-5)  # batchmean over positions
    assert torch.equal(hard[0], rows.argmax(1))


def test_penultimate_kl_checks_shapes() -> None:
    with pytest.raises(ValueError, match="do not match"):
        quest_dense_prediction([torch.randn(2, 16, 4, 4)], [torch.rand(2, 4, 4, 8)], {})


@pytest.mark.parity
@pytest.mark.parametrize("case", [("sub", 64, 64, 8, False), ("sub_down", 256, 99, 4, True)], ids=["rn56", "downscale"])
def test_subclass_target_rows_match_original(golden: dict, tmp_path: Path, case: tuple) -> None:
    name, dim, rank, _, downscale = case
    files = write_fake_lda(tmp_path, dim, rank, seed=22 if downscale else 21)
    layer = valueLayer_subclass.create_model(
        {"emb_size": 800, "inp_size": 64, "num_classes": 100, "downscale": downscale, **files}
    )
    labels = torch.tensor([3, 97])
    target = layer.teacher_target(torch.rand(2, dim, 8, 8, generator=generator(5)), labels)
    assert torch.equal(target.argmax(1), golden[f"{name}/target_argmax"])
    torch.testing.assert_close(target.sum(1), golden[f"{name}/target_rowsum"])
    # Every position is assigned one of the 8 sub-classes of its own label.
    positions = target.shape[0] // 2
    assert (target.argmax(1) // 8).tolist() == [3] * positions + [97] * positions


def test_subclass_target_is_the_nearest_center_of_the_label_by_hand(tmp_path: Path) -> None:
    files = write_fake_lda(tmp_path, 64, 64)
    layer = valueLayer_subclass.create_model({"emb_size": 800, "inp_size": 64, "num_classes": 100, **files})
    hint = torch.rand(1, 64, 2, 2, generator=generator(9))
    scalings = np.load(f"{files['lda_filename']}_scalings.npy")
    xbar = np.load(f"{files['lda_filename']}_xbar.npy")
    centers = np.load(files["centers_filename"])
    table = np.load(files["scores_filename"]).astype(np.float32)
    rows = hint.permute(0, 2, 3, 1).reshape(-1, 64).double().numpy()
    z = ((rows - xbar) @ scalings)[:, :60]
    label = 41
    own = centers[8 * label : 8 * label + 8]
    nearest = 8 * label + ((z[:, None, :] - own[None]) ** 2).sum(-1).argmin(1)
    target = layer.teacher_target(hint, torch.tensor([label]))
    np.testing.assert_allclose(target.numpy(), table[nearest], atol=1e-7)


@pytest.mark.parity
def test_subclass_loss_criterion_matches_original(golden: dict, tmp_path: Path) -> None:
    files = write_fake_lda(tmp_path, 64, 64, seed=21)
    crit = criterions.factory("subclass_loss", opt={"emb_size": 800, "num_classes": 100, **files})
    scores = torch.randn(2, 800, 8, 8, generator=generator(6))
    loss, record = crit(torch.rand(2, 64, 8, 8, generator=generator(5)), scores, torch.tensor([3, 97]), {})
    torch.testing.assert_close(loss, golden["crit/loss_sub"], atol=1e-5, rtol=1e-5)
    assert record["loss_sub"] == pytest.approx(loss.item())
    layer = fill_deterministic(
        valueLayer_subclass.create_model({"emb_size": 800, "inp_size": 64, "num_classes": 100, **files}), "x"
    )
    same = layer(
        torch.rand(2, 64, 8, 8, generator=generator(5)), scores, torch.zeros(2, 64, 8, 8), torch.tensor([3, 97]), {}
    )
    torch.testing.assert_close(same[2], loss)


@pytest.mark.parity
def test_distill_kl_matches_original(golden: dict) -> None:
    kd = criterions.factory("KD", opt={"T": 4})
    loss = kd(torch.randn(4, 10, generator=generator(8)), torch.randn(4, 10, generator=generator(9)))
    torch.testing.assert_close(loss, golden["kd/loss"], atol=1e-6, rtol=1e-5)


def test_criterion_factory_rejects_unknown_names() -> None:
    with pytest.raises(KdReproError, match="valid: KD, subclass_loss"):
        criterions.factory("AT", opt=None)
