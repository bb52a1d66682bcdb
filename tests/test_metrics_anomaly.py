"""Anomaly AUROC / AUPRC: perfect, reversed and random scores, against scikit-learn's definitions."""

from __future__ import annotations

import numpy as np
import pytest

from lpae.metrics import anomaly_metrics
from lpae.metrics.anomaly import base_rate


def test_perfect_score_gives_one() -> None:
    truth = np.array([0, 0, 1, 0, 1, 1, 0], dtype=bool)
    scores = np.where(truth, 10.0, 1.0) + np.arange(7) * 0.01
    assert anomaly_metrics(scores, truth) == {"anomaly_auroc": 1.0, "anomaly_auprc": 1.0}


def test_reversed_score_gives_zero_auroc() -> None:
    truth = np.array([1, 1, 0, 0, 0], dtype=bool)
    found = anomaly_metrics(-np.arange(5.0)[::-1], truth, suffix="_nll")
    assert found["anomaly_auroc_nll"] == 0.0
    assert found["anomaly_auprc_nll"] == pytest.approx((1 / 4 + 2 / 5) / 2)  # hits at ranks 4 and 5


def test_random_score_gives_half_and_the_base_rate() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(20_000) < 0.2
    found = anomaly_metrics(rng.random(20_000), truth)
    assert found["anomaly_auroc"] == pytest.approx(0.5, abs=0.015)
    assert found["anomaly_auprc"] == pytest.approx(truth.mean(), abs=0.015)
    assert base_rate(truth)["anomaly_base_rate"] == pytest.approx(truth.mean())


def test_ties_and_infinite_scores() -> None:
    truth = np.array([True, False, True, False])
    # all tied: AUROC 0.5; an infinite score simply ranks first
    assert anomaly_metrics(np.ones(4), truth)["anomaly_auroc"] == 0.5
    assert anomaly_metrics(np.array([np.inf, 0.0, 5.0, 1.0]), truth)["anomaly_auroc"] == 1.0
    with pytest.raises(ValueError, match="NaN"):
        anomaly_metrics(np.array([np.nan, 0.0, 5.0, 1.0]), truth)


def test_keys_absent_without_both_groups_and_length_checked() -> None:
    assert anomaly_metrics(np.arange(3.0), np.zeros(3, dtype=bool)) == {}
    assert anomaly_metrics(np.arange(3.0), np.ones(3, dtype=bool)) == {}
    with pytest.raises(ValueError, match="3 anomaly scores for 2 rows"):
        anomaly_metrics(np.arange(3.0), np.array([True, False]))
