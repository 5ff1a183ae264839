"""VkD loss (value + gradients) vs the original `engine.train_one_epoch` run on stub student/teacher modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from vkd.losses import bce_targets, build_criterion, kl_loss, vkd_loss
from vkd.models import build_projector

FIXTURE = Path(__file__).parent / "fixtures" / "losses" / "vkd_loss.npz"
B, D, N, C, CT = 4, 16, 9, 10, 24


class StubStudent(nn.Module):
    """Student whose `forward_features` returns fixed (cls, dist, patch) parameters; heads and projector are real."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(B, D))
        self.dist = nn.Parameter(torch.zeros(B, D))
        self.patch = nn.Parameter(torch.zeros(B, N, D))
        self.head = nn.Linear(D, C)
        self.head_dist = nn.Linear(D, C)
        self.projector = build_projector(D, CT)
        self.load_state_dict(state)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.cls, self.dist, self.patch


class StubTeacher(nn.Module):
    """Teacher with a fixed (B, CT, 3, 3) feature map and a linear head on its spatial mean."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator()
        self.fmap = torch.randn(B, CT, 3, 3, generator=g.manual_seed(10)) * 2.0 + 0.5
        self.fc = nn.Linear(CT, C)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(C, CT, generator=g.manual_seed(11)) * 0.5)
            self.fc.bias.copy_(torch.randn(C, generator=g.manual_seed(12)) * 0.1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fmap.clone()

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features.mean((2, 3)))


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return dict(data)


@pytest.mark.parametrize("bce", [False, True], ids=["ce", "bce"])
def test_vkd_loss_matches_original(recorded: dict[str, np.ndarray], bce: bool) -> None:
    init = {k.removeprefix("init/"): torch.from_numpy(v) for k, v in recorded.items() if k.startswith("init/")}
    student = StubStudent(init)
    criterion = build_criterion(mixup_active=True, smoothing=0.1, bce_loss=bce)
    targets = torch.from_numpy(recorded["targets"])
    out = vkd_loss(
        student, StubTeacher(), torch.zeros(B, 3, 8, 8), targets, criterion, alpha=0.7, gamma=1.3, bce_loss=bce
    )
    tag = "bce" if bce else "ce"
    terms = torch.stack([out.xe_loss, out.repr_distill_loss, out.kl_loss]).detach()
    torch.testing.assert_close(terms, torch.from_numpy(recorded[f"{tag}/losses"]).float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.loss, out.xe_loss + out.kl_loss + out.repr_distill_loss)
    out.loss.backward()
    for name, param in student.named_parameters():
        expected = torch.from_numpy(recorded[f"{tag}/grad/{name}"])
        torch.testing.assert_close(param.grad, expected, rtol=1e-4, atol=1e-6, msg=name)


def test_build_criterion_follows_original() -> None:
    assert isinstance(build_criterion(True, 0.1, False), SoftTargetCrossEntropy)
    assert isinstance(build_criterion(False, 0.1, False), LabelSmoothingCrossEntropy)
    assert type(build_criterion(False, 0.0, False)) is nn.CrossEntropyLoss
    assert isinstance(build_criterion(True, 0.1, True), nn.BCEWithLogitsLoss)


def test_bce_targets_binarise_soft_targets() -> None:
    soft = torch.tensor([[0.0, 0.0001, 0.9999], [0.5, 0.5, 0.0]])
    assert torch.equal(bce_targets(soft), torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))


def test_kl_loss_temperature() -> None:
    s, t = torch.randn(3, 5), torch.randn(3, 5)
    p_t = torch.softmax(t / 2, -1)
    manual = (p_t * (p_t.log() - torch.log_softmax(s / 2, -1))).sum() / 3 * 4
    torch.testing.assert_close(kl_loss(s, t, gamma=1.0, T=2.0), manual)


@pytest.mark.parametrize(("alpha", "gamma"), [(0.0, 1.0), (1.0, 0.0), (0.0, 0.0)])
def test_vkd_loss_rejects_settings_the_original_crashes_on(alpha: float, gamma: float) -> None:
    with pytest.raises(ValueError, match="alpha > 0 and gamma > 0"):
        vkd_loss(nn.Module(), nn.Module(), torch.zeros(1), torch.zeros(1), nn.MSELoss(), alpha=alpha, gamma=gamma)
