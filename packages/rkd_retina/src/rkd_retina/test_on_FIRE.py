# ruff: noqa: N999 (the original script name)
"""FIRE registration benchmark of the original `test_on_FIRE.py` (S/P/A AUC over 1..25 px and mAUC).

Fixes against the original: a failed pair no longer crashes on a write to the closed config file, a pair that
raises is scored as failed instead of losing the results so far, and the FIRE layout is checked before the model runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from kdrepro_shared.errors import DatasetLayoutError, KdReproError, exit_on_user_error
from rkd_retina.common.eval_util import FIRE_PAIR_COUNTS, compute_auc
from rkd_retina.dataset.fire import FirePair, list_fire_pairs, load_control_points
from rkd_retina.predictor import Predictor, read_config

BIG_NUM = 1e6
MAX_ERROR_LIMIT = 50  # a pair is "inaccurate" if its max error exceeds this ...
MEDIAN_ERROR_LIMIT = 20  # ... or its median error exceeds this
FAILED_RATE = 1e-6


@dataclass
class FireRecord:
    """Running totals of a FIRE evaluation: pair errors per category, failed and inaccurate counts."""

    auc_record: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in ("S", "P", "A")})
    failed: int = 0
    inaccurate: int = 0
    image_num: int = 0

    def summary_lines(self) -> list[str]:
        """The original's printed result: the failed/inaccurate/acceptable line and the AUC line."""
        n = self.image_num
        acceptable = n - self.inaccurate - self.failed
        auc = compute_auc(self.auc_record["S"], self.auc_record["P"], self.auc_record["A"])
        return [
            "-" * 40,
            f"Failed:{100 * self.failed / n:.2f}%, Inaccurate:{100 * self.inaccurate / n:.2f}%, "
            f"Acceptable:{100 * acceptable / n:.2f}%",
            "-" * 40,
            f"S: {auc['s']:.3f}, P: {auc['p']:.3f}, A: {auc['a']:.3f}, mAUC: {auc['mAUC']:.3f}",
        ]


def registration_errors(points_gd: np.ndarray, h_m1: np.ndarray, h_m2: np.ndarray | None) -> np.ndarray:
    """Per-point distances between reference points and query points mapped by H1 (then H2), native pixels."""
    raw = points_gd[:, 2:4].reshape(-1, 1, 2).astype(np.float64)
    dst = points_gd[:, 0:2]
    pred = cv2.perspectiveTransform(raw, h_m1)
    if h_m2 is not None:
        pred = cv2.perspectiveTransform(pred.reshape(-1, 1, 2), h_m2)
    diff = (dst - pred.reshape(-1, 2)) ** 2
    return np.sqrt(diff[:, 0] + diff[:, 1])


def match_pair(
    predictor: Predictor, pair: FirePair, use_matching_trick: bool
) -> tuple[np.ndarray | None, np.ndarray | None, float]:
    """(H1, H2 or None, inlier rate): the second pass re-matches the H1-warped query, and its rate decides failure."""
    h_m1, rate, query_image, _ = predictor.compute_homography(str(pair.query_path), str(pair.refer_path))
    h_m2 = None
    if use_matching_trick and h_m1 is not None:
        h, w = predictor.image_height, predictor.image_width
        aligned = cv2.warpPerspective(query_image, h_m1, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        aligned = aligned.astype(float) / 255.0
        h_m2, rate, _, _ = predictor.compute_homography(aligned, str(pair.refer_path), query_is_image=True)
    return h_m1, h_m2, rate


def evaluate_pair(
    record: FireRecord, pair: FirePair, h_m1: np.ndarray | None, h_m2: np.ndarray | None, rate: float
) -> None:
    """Score one pair into `record`: failed pairs get 1e6, others their mean error (inaccurate ones counted too)."""
    record.image_num += 1
    if rate < FAILED_RATE or h_m1 is None:
        print("Failed : ", pair.query_path, pair.refer_path)
        record.failed += 1
        record.auc_record[pair.category].append(BIG_NUM)
        return
    dis = registration_errors(load_control_points(pair.gt_path), h_m1, h_m2)
    mae, mee = dis.max(), np.median(dis)
    if mae > MAX_ERROR_LIMIT or mee > MEDIAN_ERROR_LIMIT:
        print("Inaccurate : ", pair.query_path, pair.refer_path)
        print("MAE : ", mae, " MEE : ", mee)
        record.inaccurate += 1
    record.auc_record[pair.category].append(dis.mean())


def check_fire_counts(pairs: Sequence[FirePair]) -> None:
    """Raise a one-line error unless the pairs are FIRE's 71 S, 48 P and 14 A (P37_1_2 excluded)."""
    found = {c: sum(p.category == c for p in pairs) for c in FIRE_PAIR_COUNTS}
    if found != FIRE_PAIR_COUNTS or len(pairs) != sum(FIRE_PAIR_COUNTS.values()):
        raise DatasetLayoutError(
            f"FIRE Ground Truth is incomplete: found S {found['S']}, P {found['P']}, A {found['A']} of "
            f"{len(pairs)} pairs; expected 71 S, 48 P, 14 A (134 files, P37_1_2 skipped)"
        )


def evaluate_fire(
    pairs: Sequence[FirePair],
    matcher: Callable[[FirePair], tuple[np.ndarray | None, np.ndarray | None, float]],
) -> FireRecord:
    """Run `matcher` on every pair and score it; a pair whose matching or scoring raises counts as failed."""
    record = FireRecord()
    for pair in tqdm(pairs):
        try:
            h_m1, h_m2, rate = matcher(pair)
        except (cv2.error, ValueError, RuntimeError, OSError) as err:
            print(f"Error on {pair.name} ({type(err).__name__}: {err}); scored as failed")
            h_m1, h_m2, rate = None, None, 0.0
        evaluate_pair(record, pair, h_m1, h_m2, rate)
    return record


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> FireRecord:
    """Evaluate `PREDICT.model_save_path` on `<data-path>/FIRE` and print the original's result lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="./config/test.yaml", help="YAML with a PREDICT section")
    parser.add_argument("--data-path", default="./data/", help="folder holding FIRE/")
    args = parser.parse_args(argv)
    config = read_config(args.config)
    if "PREDICT" not in config:
        raise KdReproError(f"{args.config} has no PREDICT section")
    pairs = list_fire_pairs(Path(args.data_path) / "FIRE")
    check_fire_counts(pairs)
    for pair in pairs:
        load_control_points(pair.gt_path)  # a malformed ground-truth file stops the run before the model does
    predictor = Predictor(config)
    use_matching_trick = config["PREDICT"]["use_matching_trick"]
    print(config["PREDICT"]["model_save_path"])
    record = evaluate_fire(pairs, lambda pair: match_pair(predictor, pair, use_matching_trick))
    for line in record.summary_lines():
        print(line)
    return record
