"""Parity of PKE (`pke_learn`) and the value-map record module with the original, incl. the uint8 wrap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rkd_retina.common.train_util import get_gaussian_kernel
from rkd_retina.loss.dice_loss import DiceLoss
from rkd_retina.model.pke_module import content_filter, pke_learn
from rkd_retina.model.record_module import update_value_map

pytestmark = pytest.mark.parity
FIXTURES = Path(__file__).parent / "fixtures" / "models"
CONFIG = {
    "nms_size": 20,
    "nms_thresh": 0.5,
    "gaussian_kernel_size": 13,
    "gaussian_sigma": 2,
    "geometric_thresh": 0.5,
    "content_thresh": 0.7,
    "area": 8,
    "value_increase_point": 5,
    "value_increase_area": 1,
    "value_decay": 1,
}


@pytest.fixture(scope="module")
def fx() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "pke.npz") as data:
        return dict(data)


def test_update_value_map_three_calls(fx: dict[str, np.ndarray]) -> None:
    value_map = torch.zeros(1, 64, 64, dtype=torch.uint8)
    calls = [[[10, 12], [40, 30], [41, 31]], [[10, 12], [40, 30], [41, 31]], [[10, 12]]]
    expected_values = [(5, 6, 0), (10, 12, 0), (15, 11, 0)]  # spec §11 probe 12, at (12,10), (30,40), (31,41)
    for i, points in enumerate(calls):
        final = update_value_map(value_map, torch.tensor(points), CONFIG)
        np.testing.assert_array_equal(final.numpy(), fx[f"vm_call{i}_points"])
        np.testing.assert_array_equal(value_map.numpy(), fx[f"vm_call{i}_map"])
        assert tuple(int(value_map[0, r, c]) for r, c in ((12, 10), (30, 40), (31, 41))) == expected_values[i]
        assert final.tolist() == [[10, 12], [40, 30]]


def test_update_value_map_uint8_wraps_like_original(fx: dict[str, np.ndarray]) -> None:
    value_map = torch.zeros(1, 64, 64, dtype=torch.uint8)
    counts = [len(update_value_map(value_map, torch.tensor([[20, 20], [50, 9]]), CONFIG)) for _ in range(60)]
    np.testing.assert_array_equal(counts, fx["vm_wrap_counts"])
    np.testing.assert_array_equal(value_map.numpy(), fx["vm_wrap_map"])
    assert min(counts) < 2  # 5·52 = 260 wraps to 4: the point drops out for a call


def test_content_filter_needs_two_points() -> None:
    desc = torch.randn(1, 256, 10, 10)
    points, affine_points = content_filter(desc, desc, [torch.tensor([[20.0, 20.0]])], [torch.tensor([[20.0, 20.0]])])
    assert points == [[]] and affine_points == [[]]


@pytest.mark.parametrize("learn", [False, True])
def test_pke_learn_matches_original(fx: dict[str, np.ndarray], learn: bool) -> None:
    tag = "on" if learn else "off"
    inputs = {k: torch.from_numpy(fx[f"pke_{k}"]) for k in ("det", "aff_det", "desc", "aff_desc", "grid_inverse")}
    labels = torch.from_numpy(fx["pke_labels"])
    value_map = torch.from_numpy(fx["pke_value_map"]).clone()
    kernel = get_gaussian_kernel(13, 2)
    for step in range(2):
        det = inputs["det"].clone().requires_grad_(True)
        loss, number_pts, vm_out, pts, label = pke_learn(
            det,
            inputs["desc"],
            inputs["grid_inverse"],
            inputs["aff_det"],
            inputs["aff_desc"],
            kernel,
            DiceLoss(),
            labels,
            value_map,
            CONFIG,
            learn,
        )
        loss.backward()
        np.testing.assert_allclose(loss.detach().numpy(), fx[f"pke_{tag}{step}_loss"], rtol=1e-5)
        assert number_pts == int(fx[f"pke_{tag}{step}_number_pts"])
        if step == 0:
            np.testing.assert_allclose(det.grad.numpy(), fx[f"pke_{tag}0_grad"], rtol=1e-4, atol=1e-9)
            np.testing.assert_allclose(label.numpy(), fx[f"pke_{tag}0_label"], rtol=1e-5, atol=1e-7)
        if learn:
            np.testing.assert_array_equal(pts.numpy(), fx[f"pke_{tag}{step}_pts"])
            np.testing.assert_array_equal(vm_out.numpy(), fx[f"pke_{tag}{step}_value_map"])
            value_map = vm_out
        else:
            assert vm_out is None and pts is None
