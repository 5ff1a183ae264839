"""revisitop mAP / mP@k and the SVD AP scorer against numbers recorded from revisitop and the original code."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from whiten_mtd.datasets.oxford_paris import compute_ap, compute_map, evaluate_ranks, protocol_gnd
from whiten_mtd.metric import APScorer, MetricLogger, MetricScorer, SmoothedValue

FIXTURE = Path(__file__).parent / "fixtures" / "metric" / "compute_map.json"


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.mark.parity
@pytest.mark.parametrize("setup", ["easy", "medium", "hard"])
def test_compute_map_matches_revisitop(golden: dict, setup: str) -> None:
    ranks = np.asarray(golden["ranks"], dtype=np.int64)
    gnd_t = protocol_gnd(golden["gnd"], setup)
    mean_ap, aps, pr, prs = compute_map(ranks, gnd_t, golden["kappas"])
    want = golden["setups"][setup]
    assert mean_ap == pytest.approx(want["map"], abs=1e-12)
    np.testing.assert_allclose(aps, np.asarray(want["aps"], dtype=float), atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(pr, want["pr"], atol=1e-12)
    np.testing.assert_allclose(prs, np.asarray(want["prs"], dtype=float), atol=1e-12, equal_nan=True)
    assert compute_map(ranks, gnd_t)[0] == pytest.approx(want["map_nokappa"], abs=1e-12)


@pytest.mark.parity
def test_evaluate_ranks_all_setups(golden: dict) -> None:
    ranks = np.asarray(golden["ranks"], dtype=np.int64)
    results = evaluate_ranks(ranks, golden["gnd"], golden["kappas"])
    for setup, (mean_ap, mean_pr) in results.items():
        assert mean_ap == pytest.approx(golden["setups"][setup]["map"], abs=1e-12)
        np.testing.assert_allclose(mean_pr, golden["setups"][setup]["pr"], atol=1e-12)


@pytest.mark.parity
def test_compute_ap_cases(golden: dict) -> None:
    for (ranks, nres), want in zip(golden["ap_cases"], golden["ap_values"], strict=True):
        assert compute_ap(np.asarray(ranks, dtype=np.int64), nres) == pytest.approx(want, abs=1e-12)


def test_compute_map_perfect_and_junk_skipping() -> None:
    ranks = np.arange(6)[:, None]
    assert compute_map(ranks, [{"ok": np.array([0, 1]), "junk": np.array([])}])[0] == pytest.approx(1.0)
    # a junk image ranked between two positives is skipped, so the ranking counts as perfect
    assert compute_map(ranks, [{"ok": np.array([0, 2]), "junk": np.array([1])}])[0] == pytest.approx(1.0)
    assert compute_map(ranks, [{"ok": np.array([0, 2]), "junk": np.array([])}])[0] < 1.0


def test_query_without_positives_is_excluded() -> None:
    ranks = np.stack([np.arange(5), np.arange(5)], axis=1)
    gnd = [{"ok": np.array([]), "junk": np.array([])}, {"ok": np.array([0]), "junk": np.array([])}]
    mean_ap, aps, pr, prs = compute_map(ranks, gnd, [1])
    assert mean_ap == 1.0 and np.isnan(aps[0]) and np.isnan(prs[0, 0]) and pr[0] == 1.0


@pytest.mark.parity
@pytest.mark.parametrize("k", ["0", "3", "100"])
def test_ap_scorer_matches_original(golden: dict, k: str) -> None:
    scorer = APScorer(int(k))
    got = [scorer.score(labels) for labels in golden["label_lists"]]
    np.testing.assert_allclose(got, golden["ap_scores"][k], atol=0, rtol=0)
    assert scorer.name() == golden["ap_names"][k]


def test_ap_scorer_normalises_by_relevant_inside_cutoff() -> None:
    assert APScorer(2).score([1, 0, 1, 1]) == pytest.approx(1.0)
    assert APScorer().score([0, 1]) == pytest.approx(0.5)
    assert MetricScorer(5).score([1]) == 0.0


def test_smoothed_value_and_logger(caplog: pytest.LogCaptureFixture) -> None:
    meter = SmoothedValue()
    for value in (1.0, 2.0, 4.0):
        meter.update(value)
    assert (meter.median, meter.max, meter.value) == (2.0, 4.0, 4.0)
    assert meter.global_avg == pytest.approx(7 / 3)
    meter.sync()  # no process group: unchanged
    assert meter.count == 3
    logger = logging.getLogger("test_metric")
    metrics = MetricLogger(logger, delimiter="  ")
    with caplog.at_level(logging.INFO, logger="test_metric"):
        seen = []
        for i, item in metrics.log_every(range(5), 2, header="Epoch: [1/1]"):
            metrics.update(loss=torch.tensor(float(item)))
            seen.append((i, item))
    assert seen == [(i, i) for i in range(5)]
    assert sum("loss:" in record.message for record in caplog.records) == 3  # i = 0, 2, 4
    assert "Total time" in caplog.records[-1].message
    assert list(MetricLogger(None).log_every(range(10), 1, iterations=3)) == [(0, 0), (1, 1), (2, 2)]
    with pytest.raises(TypeError, match="float or int"):
        metrics.update(loss="x")
