"""Parity of the Dice and triplet losses with the original `loss/` modules (values and gradients)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rkd_retina.loss.dice_loss import DiceBCELoss, DiceLoss
from rkd_retina.loss.triplet_loss import (
    pairwise_distance,
    sos_reg,
    triplet_margin_loss_gor,
    triplet_margin_loss_gor_one,
)

pytestmark = pytest.mark.parity
FIXTURES = Path(__file__).parent / "fixtures" / "models"


@pytest.fixture(scope="module")
def fx() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "losses.npz") as data:
        return dict(data)


def t(array: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.from_numpy(array).clone().requires_grad_(grad)


def test_dice_matches_original_value_and_gradient(fx: dict[str, np.ndarray]) -> None:
    p = t(fx["dice_p"], grad=True)
    loss = DiceLoss()(p, t(fx["dice_t"]))
    loss.backward()
    assert loss.item() == pytest.approx(0.256381630897522, abs=1e-6)  # spec §11 probe 5
    np.testing.assert_allclose(loss.detach().numpy(), fx["dice_loss"], rtol=1e-6)
    np.testing.assert_allclose(p.grad.numpy(), fx["dice_grad"], rtol=1e-5, atol=1e-8)


def test_dice_binary_target_and_symmetry(fx: dict[str, np.ndarray]) -> None:
    p, target = t(fx["dice2_p"]), t(fx["dice2_t"])
    np.testing.assert_allclose(DiceLoss()(p, target).numpy(), fx["dice2_loss"], rtol=1e-6)
    np.testing.assert_allclose(DiceLoss()(target, p).numpy(), fx["dice2_loss"], rtol=1e-6)
    np.testing.assert_allclose(DiceBCELoss()(p, target).numpy(), fx["dicebce_loss"], rtol=1e-6)


def test_dice_reductions() -> None:
    p = torch.rand(2, 1, 4, 4)
    assert DiceLoss(reduction="none")(p, p).shape == ()
    assert DiceLoss(reduction="sum")(p, p).item() == pytest.approx(DiceLoss()(p, p).item())
    with pytest.raises(ValueError, match="Unexpected reduction"):
        DiceLoss(reduction="max")(p, p)


def test_triplet_gor_matches_original_value_and_gradients(fx: dict[str, np.ndarray]) -> None:
    ins = [t(fx[f"trip_{k}"], grad=True) for k in ("a", "p", "n1", "n2")]
    loss = triplet_margin_loss_gor(*ins, margin=0.8)
    loss.backward()
    assert loss.item() == pytest.approx(0.8192591071128845, abs=1e-6)  # spec §11 probe 6
    np.testing.assert_allclose(loss.detach().numpy(), fx["trip_loss"], rtol=1e-6)
    for k, tensor in zip(("a", "p", "n1", "n2"), ins, strict=True):
        np.testing.assert_allclose(tensor.grad.numpy(), fx[f"trip_grad_{k}"], rtol=1e-5, atol=1e-8)


def test_unused_triplet_variants_match_original(fx: dict[str, np.ndarray]) -> None:
    a, p, n1 = (t(fx[f"trip_{k}"]) for k in ("a", "p", "n1"))
    np.testing.assert_allclose(
        triplet_margin_loss_gor_one(a, p, n1, margin=0.8).numpy(), fx["trip_one_loss"], rtol=1e-6
    )
    np.testing.assert_allclose(sos_reg(a, p).numpy(), fx["sos_loss"], rtol=1e-5)


def test_pairwise_distance_is_one_minus_cosine() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    np.testing.assert_allclose(pairwise_distance(x, y).numpy(), [0.0, 1.0], atol=1e-7)
