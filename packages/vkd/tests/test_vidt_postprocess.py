"""PostProcess('coco'): top-100 sigmoid scores over queries × classes, labels, absolute xyxy boxes vs the original."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kdrepro_shared.errors import KdReproError
from vkd.vidt.methods.vidt.postprocessor import PostProcess

FIXTURE = Path(__file__).parent / "fixtures" / "vidt_losses" / "criterion.pt"


@pytest.mark.parity
def test_postprocess_matches_original() -> None:
    recorded = torch.load(FIXTURE, weights_only=False)
    inputs = recorded["inputs"]
    ours = PostProcess("coco")(inputs["outputs"], inputs["target_sizes"])
    for mine, theirs in zip(ours, recorded["postprocess"], strict=True):
        assert torch.allclose(mine["scores"], theirs["scores"], atol=1e-6)
        assert torch.equal(mine["labels"], theirs["labels"])
        assert torch.allclose(mine["boxes"], theirs["boxes"], atol=1e-4)


def test_postprocess_scales_boxes_to_the_original_size() -> None:
    logits = torch.full((1, 2, 91), -9.0)
    logits[0, 1, 5] = 9.0
    boxes = torch.tensor([[[0.5, 0.5, 1.0, 1.0], [0.25, 0.5, 0.5, 0.2]]])
    [result] = PostProcess("coco")({"pred_logits": logits, "pred_boxes": boxes}, torch.tensor([[100, 200]]))
    assert result["scores"].shape == (100,) and int(result["labels"][0]) == 5
    assert torch.allclose(result["boxes"][0], torch.tensor([0.0, 40.0, 100.0, 60.0]))


def test_postprocess_rejects_unknown_dataset() -> None:
    with pytest.raises(KdReproError, match="coco"):
        PostProcess("lvis")
