"""Two VkD training iterations vs the original `engine.train_one_epoch`, and the projector-collapse quirk and fix.

Reference: roymiles/VkD @ 6f8a507, DeiT-Ti + projector (192→368) and a `regnety_002` teacher, deterministic
weights, AdamW from the original `create_optimizer` (lr 5e-4, wd 0.05; 2-D non-bias tensors decayed, the
projector's `original` included), SoftTargetCE on fixed soft targets, fp32 on CPU (see fixtures/README.md).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
import torch
from timm.loss import SoftTargetCrossEntropy
from torch import nn

from vkd.losses import vkd_loss
from vkd.models import MODELS, PROJECTOR_PARAM, attach_projector, create_teacher, exclude_projector_from_weight_decay
from vkd.testing import fill_deterministic

FIXTURE = Path(__file__).parent / "fixtures" / "train_step" / "deit_ti_regnety_002.json"


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def original_param_groups(model: nn.Module) -> list[dict]:
    """The original `create_optimizer` grouping: 1-D, `.bias` and `no_weight_decay()` names get wd 0."""
    skip = model.no_weight_decay()
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            plain = param.ndim == 1 or name.endswith(".bias") or name in skip
            (no_decay if plain else decay).append((name, param))
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(groups: list[dict]) -> torch.optim.AdamW:
    groups = [{**g, "params": [p for _, p in g["params"]]} for g in groups]
    return torch.optim.AdamW(groups, lr=5e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(seed))
    targets = torch.full((2, 1000), 0.1 / 1000)
    targets[0, 3] += 0.9
    targets[1, 7] += 0.9
    return x, targets


def test_two_iterations_match_original() -> None:
    expected = json.loads(FIXTURE.read_text())
    torch.manual_seed(0)
    student = MODELS["deit_ti_distilled"](num_classes=1000, img_size=224)
    teacher = create_teacher("regnety_002", pretrained=False)
    attach_projector(student, teacher.num_features)
    fill_deterministic(student)
    fill_deterministic(teacher)
    groups = original_param_groups(student)
    assert [[n for n, _ in g["params"]] for g in groups] == expected["groups"]
    assert PROJECTOR_PARAM in expected["groups"][0]
    assert expected["lr"] == [5e-4, 5e-4]  # the cosine schedule sets lr(0) = 5e-4 again after iteration 0
    optimizer = adamw(groups)

    losses = []
    for step, seed in enumerate((1, 2)):
        student.train()
        x, targets = batch(seed)
        out = vkd_loss(student, teacher, x, targets, SoftTargetCrossEntropy())
        losses.append([out.xe_loss.item(), out.repr_distill_loss.item(), out.kl_loss.item()])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step == 0:
            original = student.projector.parametrizations.weight.original.detach()
            assert original.diagonal()[:5].tolist() == pytest.approx(expected["projector_step1"]["original_diag"])
            assert int(original.diagonal().int().abs().sum()) == 0
            assert float(student.projector.weight.detach().norm()) == expected["projector_step1"]["weight_norm"] == 0.0
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(expected["losses"]), rtol=1e-4, atol=1e-5)

    assert float(student.projector.weight.detach().norm()) == expected["projector_weight_norm_final"] == 0.0
    assert [n for n, _ in student.named_parameters()] == list(expected["params"])
    for name, param in student.named_parameters():
        flat = param.detach().double().flatten()
        idx = torch.randint(0, flat.numel(), (6,), generator=torch.Generator().manual_seed(zlib.crc32(name.encode())))
        total, squares, samples = expected["params"][name]
        assert float(flat.sum()) == pytest.approx(total, rel=1e-6, abs=1e-5), name
        assert float((flat * flat).sum()) == pytest.approx(squares, rel=1e-6, abs=1e-6), name
        torch.testing.assert_close(flat[idx], torch.tensor(samples, dtype=torch.float64), rtol=1e-4, atol=1e-5)


class TinyStudent(nn.Module):
    """A linear trunk with the VkD projector attached, for the cheap collapse checks."""

    num_features = 8

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Linear(4, self.num_features)

    def no_weight_decay(self) -> set[str]:
        return set()


def train_tiny(fix: bool, steps: int = 2) -> nn.Module:
    torch.manual_seed(0)
    student = TinyStudent()
    attach_projector(student, 12)
    optimizer = adamw(original_param_groups(student))
    if fix:
        assert exclude_projector_from_weight_decay(optimizer, student.projector) == 1
    x, target = torch.randn(5, 4), torch.randn(5, 12)
    for _ in range(steps):
        loss = nn.functional.smooth_l1_loss(student.projector(student.trunk(x)), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return student


def test_projector_collapses_without_fix() -> None:
    weight = train_tiny(fix=False).projector.weight
    assert torch.count_nonzero(weight) == 0


def test_fix_projector_decay_keeps_projector_orthogonal() -> None:
    student = train_tiny(fix=True)
    original = student.projector.parametrizations.weight.original.detach()
    assert torch.equal(original.diagonal(), -torch.ones(8))
    weight = student.projector.weight.detach()
    torch.testing.assert_close(weight.T @ weight, torch.eye(8), atol=1e-5, rtol=0)
    assert float((original.tril(-1)).abs().sum()) > 0  # the projector did train


def test_fix_must_precede_first_step() -> None:
    student = train_tiny(fix=False, steps=1)
    optimizer = adamw(original_param_groups(student))
    student.projector.weight.sum().backward()
    optimizer.step()
    with pytest.raises(RuntimeError, match="before the first optimizer step"):
        exclude_projector_from_weight_decay(optimizer, student.projector)
