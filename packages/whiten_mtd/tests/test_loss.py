"""MultiTeacherDistillLoss against the original's values and gradients (fixtures/loss), plus its fusion rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kdrepro_shared.errors import KdReproError
from whiten_mtd.loss import STRATEGIES, MultiTeacherDistillLoss, gather_with_grad

GOLDEN = torch.load(Path(__file__).parent / "fixtures/loss/loss_golden.pt", weights_only=True)


def _run(case: dict, strategy: str) -> tuple[MultiTeacherDistillLoss, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two calls with the recorder's seed (the counter accumulates, the RNG advances), backward of the second."""
    inputs = case["inputs"]
    teachers = [f"t{k}" for k in range(len(inputs["t1"]))]
    loss_fn = MultiTeacherDistillLoss(st=case["temp"], tt=case["temp"], s=strategy, teachers=teachers)
    s1 = inputs["s1"].clone().requires_grad_(True)
    s2 = inputs["s2"].clone().requires_grad_(True)
    torch.manual_seed(1234)
    for _ in range(2):
        loss = loss_fn(s1, s2, [t.clone() for t in inputs["t1"]], [t.clone() for t in inputs["t2"]])["distill loss"]
    loss.backward()
    return loss_fn, loss.detach(), s1.grad, s2.grad


@pytest.mark.parity
@pytest.mark.parametrize("case_name", sorted(GOLDEN))
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_loss_and_gradients_match_original(case_name: str, strategy: str) -> None:
    case = GOLDEN[case_name]
    want = case["results"][strategy]
    loss_fn, loss, grad1, grad2 = _run(case, strategy)
    torch.testing.assert_close(loss, want["loss"], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(grad1, want["grad_s1"], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grad2, want["grad_s2"], atol=1e-6, rtol=1e-5)
    assert loss_fn.pos_win_count.tolist() == want["pos_win_count"].tolist()
    assert repr(loss_fn) == want["repr"]


def test_reference_value_of_the_spec() -> None:
    """The spec's worked example: one maxmin call gives 4.939742 and counts [6, 4, 6]."""
    case = GOLDEN["ref"]["inputs"]
    loss_fn = MultiTeacherDistillLoss(s="maxmin", teachers=["a", "b", "c"])
    loss = loss_fn(case["s1"], case["s2"], case["t1"], case["t2"])["distill loss"]
    assert loss.item() == pytest.approx(4.939742, abs=1e-6)
    assert loss_fn.pos_win_count.tolist() == [6, 4, 6]


def _sims(n: int = 5, teachers: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return torch.rand(teachers, n, n, generator=generator) * 2 - 1


def test_fusion_rules() -> None:
    sims = _sims()
    eye = torch.eye(5, dtype=torch.bool)
    loss_fn = MultiTeacherDistillLoss(s="maxmin", teachers=["a", "b", "c"])
    maxmin = loss_fn.s_maxmin(sims)
    assert torch.equal(maxmin[eye], sims.max(0)[0][eye])
    assert torch.equal(maxmin[~eye], sims.min(0)[0][~eye])
    maxmean = loss_fn.s_maxmean(sims)
    assert torch.equal(maxmean[~eye], sims.mean(0)[~eye])
    maxrand = loss_fn.s_maxrand(sims)
    assert torch.equal(maxrand[eye], sims.max(0)[0][eye])
    picked = (sims == maxrand.unsqueeze(0)).any(0)
    assert picked.all(), "every off-diagonal entry comes from one of the teachers"
    rand = loss_fn.s_rand(sims)
    assert (sims == rand.unsqueeze(0)).any(0).all()
    assert torch.equal(loss_fn.s_mean(sims), sims.mean(0))
    assert loss_fn.pos_win_count.sum().item() == 3 * 5, "three max* calls, five positives each"


def test_world_size_one_gather_is_identity_and_loss_is_nonnegative() -> None:
    x = torch.randn(4, 8)
    assert gather_with_grad(x) is x
    loss_fn = MultiTeacherDistillLoss(s="mean", teachers=["a"])
    s = torch.randn(4, 8)
    same = loss_fn(s, s, [s], [s])["distill loss"]
    assert same.item() == pytest.approx(0.0, abs=1e-5), "student equal to the single teacher gives zero KL"


def test_state_dict_holds_only_the_counter() -> None:
    loss_fn = MultiTeacherDistillLoss(s="maxmin", teachers=["a", "b"])
    assert list(loss_fn.state_dict()) == ["pos_win_count"]


@pytest.mark.parametrize("bad", ["s_maxfix", "maxfix", None, "MAXMIN"])
def test_unknown_strategy_is_a_clear_error(bad: str | None) -> None:
    with pytest.raises(KdReproError, match="mean, maxmin, maxmean, maxrand, rand"):
        MultiTeacherDistillLoss(s=bad, teachers=["a"])
