"""ThreeAugment (`vkd.augment.aug_generator`) against outputs recorded from the original on a fixed image."""

from __future__ import annotations

import random
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from vkd.augment import GaussianBlur, Solarization, aug_generator, gray_scale

FIXTURES = Path(__file__).parent / "fixtures" / "augment"
VARIANTS = {
    "default": {"src": False, "disable_gray_solar_and_blur": False, "color_jitter": 0.3},
    "src": {"src": True, "disable_gray_solar_and_blur": False, "color_jitter": 0.3},
    "no_gsb": {"src": False, "disable_gray_solar_and_blur": True, "color_jitter": 0.3},
    "no_jitter": {"src": False, "disable_gray_solar_and_blur": False, "color_jitter": 0.0},
}


@pytest.mark.parity
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_matches_original(variant: str) -> None:
    expected = torch.load(FIXTURES / "three_augment.pt", weights_only=True)
    image = Image.open(FIXTURES / "input.png").convert("RGB")
    transform = aug_generator(Namespace(input_size=32, **VARIANTS[variant]))
    for seed in range(3):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        torch.testing.assert_close(transform(image), expected[f"{variant}/{seed}"], rtol=0, atol=1e-6)


def test_pipeline_structure() -> None:
    names = [type(t).__name__ for t in aug_generator(Namespace(input_size=224, **VARIANTS["default"])).transforms]
    assert names == [
        "RandomResizedCropAndInterpolation", "RandomHorizontalFlip", "RandomChoice", "ColorJitter", "ToTensor",
        "Normalize",
    ]  # fmt: skip
    src = aug_generator(Namespace(input_size=224, **VARIANTS["src"])).transforms
    assert [type(t).__name__ for t in src[:3]] == ["Resize", "RandomCrop", "RandomHorizontalFlip"]
    assert src[1].padding == 4 and src[1].padding_mode == "reflect"
    plain = aug_generator(Namespace(input_size=224, src=False, disable_gray_solar_and_blur=True, color_jitter=0.0))
    assert [type(t).__name__ for t in plain.transforms][2:] == ["ToTensor", "Normalize"]


def test_secondary_ops_apply_with_probability_one() -> None:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    gray = np.asarray(gray_scale(p=1.0)(image))
    assert gray.shape == (16, 16, 3) and (gray[..., 0] == gray[..., 1]).all()
    solar = np.asarray(Solarization(p=1.0)(image)).astype(int)
    raw = np.asarray(image).astype(int)
    assert (solar == np.where(raw >= 128, 255 - raw, raw)).all()
    random.seed(0)
    assert np.asarray(GaussianBlur(p=1.0)(image)).std() < raw.std()
    assert GaussianBlur(p=0.0)(image) is image
    assert isinstance(gray_scale(p=1.0).transf, transforms.Grayscale)
