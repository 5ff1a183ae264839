"""FIRE registration AUC of the original `common/eval_util.py`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FIRE_PAIR_COUNTS = {"S": 71, "P": 48, "A": 14}  # P37_1_2 is excluded, so P has 48 of its 49 pairs
AUC_LIMIT = 25


def compute_auc(s_error: Sequence[float], p_error: Sequence[float], a_error: Sequence[float]) -> dict[str, float]:
    """AUC of the success rate (error strictly < i px, i = 1..25) per FIRE category and their mean ('mAUC')."""
    errors = {"S": s_error, "P": p_error, "A": a_error}
    for category, expected in FIRE_PAIR_COUNTS.items():
        if len(errors[category]) != expected:
            raise ValueError(
                f"FIRE category {category} needs {expected} pair errors, got {len(errors[category])} "
                "(FIRE has 71 S, 48 P without P37_1_2, and 14 A pairs)"
            )
    thresholds = np.arange(1, AUC_LIMIT + 1)
    auc = {}
    for category, category_errors in errors.items():
        values = np.asarray(category_errors, dtype=np.float64)
        success = [np.sum(values < i) * 100 / len(values) for i in thresholds]
        auc[category.lower()] = float(sum(success) / (AUC_LIMIT * 100))  # sequential sum, as the original
    auc["mAUC"] = (auc["s"] + auc["p"] + auc["a"]) / 3.0
    return auc
