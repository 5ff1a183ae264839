"""FIRE AUC parity with the original `compute_auc` (strict `<`, thresholds 1..25)."""

from pathlib import Path

import numpy as np
import pytest

from rkd_retina.common.eval_util import compute_auc

FIX = np.load(Path(__file__).parent / "fixtures" / "eval" / "common_dataset.npz")


@pytest.mark.parity
@pytest.mark.parametrize("case", [0, 1, 2])
def test_compute_auc_matches_original(case):
    auc = compute_auc(*(FIX[f"auc_{case}_in_{c}"] for c in "spa"))
    assert [auc["s"], auc["p"], auc["a"], auc["mAUC"]] == FIX[f"auc_{case}_out"].tolist()


def test_compute_auc_spec_examples_and_counts():
    auc = compute_auc([0.5] * 71, [1e6] * 48, [3.0] * 14)
    assert (auc["s"], auc["p"], auc["a"]) == (1.0, 0.0, 0.88) and auc["mAUC"] == pytest.approx(0.626667, abs=1e-6)
    auc = compute_auc([1.0] * 71, [24.999] * 48, [25.0] * 14)
    assert (auc["s"], auc["p"], auc["a"]) == pytest.approx((0.96, 0.04, 0.0))
    with pytest.raises(ValueError, match="category P needs 48"):
        compute_auc([1.0] * 71, [1.0] * 49, [1.0] * 14)
