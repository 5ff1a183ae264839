"""Parity of `rkd_retina.common` with the original (golden outputs in fixtures/eval, see its README)."""

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from rkd_retina.common import common_util as cu
from rkd_retina.common import train_util, train_util_original
from rkd_retina.dataset.fake_data import synthetic_fundus

FIX = np.load(Path(__file__).parent / "fixtures" / "eval" / "common_dataset.npz")
SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "data" / "retina_samples"
pytestmark = pytest.mark.parity


def test_simple_nms_nms_remove_borders():
    torch.manual_seed(0)
    maps = torch.rand(2, 1, 48, 48)
    tie = torch.zeros(1, 1, 48, 48)
    tie[0, 0, 20, 20] = tie[0, 0, 20, 22] = 0.9
    tie[0, 0, 30, 30], tie[0, 0, 5, 40] = 0.7, 0.8
    for r in (2, 10, 20):
        np.testing.assert_array_equal(cu.simple_nms(maps, r).numpy(), FIX[f"simple_nms_r{r}"])
        np.testing.assert_array_equal(cu.simple_nms(tie, r).numpy(), FIX[f"simple_nms_tie_r{r}"])
    assert cu.simple_nms(tie, 2)[0, 0, 20, 22] == 0.9  # equal maxima 2 px apart both survive
    for th, sz in ((0.5, 20), (0.1, 4)):
        for b, points in enumerate(cu.nms(maps, th, sz)):
            np.testing.assert_array_equal(points.numpy(), FIX[f"nms_{th}_{sz}_{b}"])
    kp, sc = cu.remove_borders(
        torch.tensor([[0, 0], [3, 47], [8, 8], [40, 39], [39, 40], [20, 10]]), torch.arange(6).float(), 4, 44, 48
    )
    np.testing.assert_array_equal(kp.numpy(), FIX["remove_borders_kp"])
    np.testing.assert_array_equal(sc.numpy(), FIX["remove_borders_sc"])


def test_sample_keypoint_desc_divisor_and_zero_padding():
    torch.manual_seed(1)
    desc = torch.randn(1, 16, 94, 94)
    kps = torch.from_numpy(FIX["skd_kp"])
    out = cu.sample_keypoint_desc(kps[None], desc, 8)
    np.testing.assert_allclose(out.numpy(), FIX["skd_out"], atol=1e-6)
    assert torch.all(out[0, :, (kps >= 760).any(1)] == 0)


def test_sample_descriptors_and_knowledge():
    torch.manual_seed(2)
    det = torch.rand(2, 1, 64, 64) * 0.4
    for b, (y, x) in enumerate([(20, 30), (40, 12)]):
        det[b, 0, y, x], det[b, 0, 50, 50], det[b, 0, 10, 9] = 0.9, 0.95, 0.8
    d1, d2 = torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8)
    a = -7 * math.pi / 180
    theta = torch.tensor(
        [[math.cos(a) / 1.1, math.sin(-a), -10 / 64], [math.sin(a), math.cos(a) / 1.1, 0.0], [0, 0, 1]]
    )
    grid_inv = F.affine_grid(theta.inverse()[:2][None].repeat(2, 1, 1), (2, 1, 64, 64), align_corners=True)
    results = {
        "sd": cu.sample_descriptors(det, d1, d2, grid_inv, nms_size=5, nms_thresh=0.5, scale=8),
        "sk": cu.sample_descriptors_knowledge(det, d1, d2, nms_size=5, nms_thresh=0.5, scale=8),
    }
    for name, (desc, aff, kp) in results.items():
        for b in range(2):
            np.testing.assert_allclose(desc[b].numpy(), FIX[f"{name}_desc_{b}"], atol=1e-6)
            np.testing.assert_allclose(aff[b].numpy(), FIX[f"{name}_aff_{b}"], atol=1e-6)
            np.testing.assert_array_equal(kp[b].numpy(), FIX[f"{name}_kp_{b}"])


def test_pre_processing_synthetic():
    out = cu.pre_processing(synthetic_fundus(96, seed=3)[:, :, 1])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, FIX["pre_syn_f32"])


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared/data/retina_samples not present")
def test_pre_processing_real_sample():
    green = np.asarray(Image.open(SAMPLES / "vistel0_left_0.jpg").convert("RGB"))[:, :, 1]
    np.testing.assert_array_equal(cu.pre_processing(green), (FIX["pre_vistel_u8"] / 255.0).astype(np.float32))


@pytest.mark.parametrize("used_for", ["detector", "descriptor"])
def test_affine_images_seeded(used_for):
    images = torch.from_numpy(FIX["affine_in"])
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        random.seed(seed)
        out, grid, grid_inv = train_util.affine_images(images, used_for)
        prefix = f"affine_{used_for}_{seed}"
        np.testing.assert_allclose(out.numpy(), FIX[f"{prefix}_out"], atol=1e-6)
        np.testing.assert_allclose(grid.numpy(), FIX[f"{prefix}_grid"], atol=1e-6)
        np.testing.assert_allclose(grid_inv.numpy(), FIX[f"{prefix}_ginv"], atol=1e-6)


def test_gaussian_kernel_and_shared_helpers():
    kernel = train_util_original.get_gaussian_kernel(13, 2)
    np.testing.assert_allclose(kernel.numpy(), FIX["kernel_13_2"], atol=1e-7)
    assert kernel.shape == (1, 1, 13, 13) and kernel.max() == 1 and kernel.min() == 0
    assert train_util.get_gaussian_kernel is train_util_original.get_gaussian_kernel


def test_value_map_round_trip(tmp_path):
    maps = torch.randint(0, 255, (2, 1, 8, 8), dtype=torch.uint8)
    running = {}
    train_util.value_map_save(tmp_path, ["a.txt", "[None]"], [True, False], maps, running)
    assert list(running) == ["a.txt"]
    loaded = train_util.value_map_load(tmp_path, ["a.txt", "[None]"], [True, False], (8, 8), running)
    assert torch.equal(loaded[0], maps[0]) and not loaded[1].any()
    train_util.value_map_save(tmp_path, ["b.txt"], [True], maps[:1])
    assert torch.equal(train_util.value_map_load(tmp_path, ["b.txt"], [True], (8, 8))[0], maps[0])
