"""Hungarian matcher (focal class cost, L1, GIoU) vs the assignment the original `HungarianMatcher` produced."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kdrepro_shared.errors import KdReproError
from vkd.vidt.arguments import get_args_parser
from vkd.vidt.methods.vidt.matcher import HungarianMatcher, build_matcher

FIXTURE = Path(__file__).parent / "fixtures" / "vidt_losses" / "criterion.pt"


@pytest.fixture(scope="module")
def recorded() -> dict:
    return torch.load(FIXTURE, weights_only=False)


def assert_same_pairs(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs)
    for (src, tgt), (src_ref, tgt_ref) in zip(ours, theirs, strict=True):
        assert src.dtype == tgt.dtype == torch.int64
        assert torch.equal(src, src_ref) and torch.equal(tgt, tgt_ref)


@pytest.mark.parity
def test_matcher_assignment_matches_original(recorded: dict) -> None:
    matcher = build_matcher(get_args_parser().parse_args([]))
    outputs, targets = recorded["inputs"]["outputs"], recorded["inputs"]["targets"]
    last = {k: v for k, v in outputs.items() if k != "aux_outputs"}
    assert_same_pairs(matcher(last, targets), recorded["indices"]["last"])
    for aux, reference in zip(outputs["aux_outputs"], recorded["indices"]["aux"], strict=True):
        assert_same_pairs(matcher(aux, targets), reference)


def test_matcher_picks_the_obvious_pairs() -> None:
    boxes = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.7, 0.7, 0.2, 0.2], [0.5, 0.5, 0.3, 0.3]])
    logits = torch.full((1, 3, 91), -5.0)
    logits[0, 0, 7] = logits[0, 1, 3] = 5.0
    targets = [{"labels": torch.tensor([3, 7]), "boxes": boxes[[1, 0]]}]
    [(src, tgt)] = HungarianMatcher(2, 5, 2)({"pred_logits": logits, "pred_boxes": boxes[None]}, targets)
    assert dict(zip(src.tolist(), tgt.tolist(), strict=True)) == {0: 1, 1: 0}


def test_matcher_refuses_all_zero_costs() -> None:
    with pytest.raises(KdReproError, match="non-zero"):
        HungarianMatcher(0, 0, 0)
