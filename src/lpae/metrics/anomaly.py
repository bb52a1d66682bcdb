"""Anomaly detection under the one-class protocol (lpae.protocol): a run trained on normal classes
scores every test row; the rows of the other classes are the anomalies (positives).

- ``anomaly_auroc``, ``anomaly_auprc``: area under the ROC curve (sklearn.metrics.roc_auc_score)
  and average precision, the step-wise area under the precision-recall curve
  (sklearn.metrics.average_precision_score), of the criterion's own per-sample loss
  criterion(x, decoder(x)) as the anomaly score (higher = more anomalous).
- ``anomaly_auroc_nll``, ``anomaly_auprc_nll``: the same for the per-sample NLL under a
  generalized normal whose shape and scale are fitted on the validation residuals (normal rows
  only, so nothing about the test anomalies leaks into the score; lpae.metrics.likelihood).
- ``anomaly_base_rate``: the fraction of anomalies among the test rows, which is what AUPRC a
  random score reaches (its AUROC is 0.5); a perfect score reaches 1 for both.

Both metrics depend only on the order of the scores, so scores are ranked first (ties share a
rank) and infinite scores rank at the ends. Keys are absent when the test rows hold only one of
the two groups.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from lpae.metrics.registry import ANOMALY, Metric, declare

declare(
    Metric(
        "anomaly_auroc", "anomaly AUROC of the own loss", better="higher", groups=(ANOMALY,), fraction=True
    ),
    Metric(
        "anomaly_auprc", "anomaly AUPRC of the own loss", better="higher", groups=(ANOMALY,), fraction=True
    ),
    Metric(
        "anomaly_auroc_nll",
        "anomaly AUROC of the calibrated NLL",
        better="higher",
        groups=(ANOMALY,),
        fraction=True,
    ),
    Metric(
        "anomaly_auprc_nll",
        "anomaly AUPRC of the calibrated NLL",
        better="higher",
        groups=(ANOMALY,),
        fraction=True,
    ),
    Metric("anomaly_base_rate", "fraction of anomalies among the test rows (AUPRC of a random score)"),
)


def ranked(scores: np.ndarray, what: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if np.isnan(scores).any():
        raise ValueError(f"{what}: anomaly scores contain NaN")
    return rankdata(scores)


def anomaly_metrics(scores: np.ndarray, is_anomaly: np.ndarray, suffix: str = "") -> dict[str, float]:
    """anomaly_auroc{suffix} and anomaly_auprc{suffix} of scores (N,) for the boolean truth (N,)."""
    truth = np.asarray(is_anomaly, dtype=bool).reshape(-1)
    if len(truth) != np.size(scores):
        raise ValueError(f"{np.size(scores)} anomaly scores for {len(truth)} rows")
    if truth.all() or not truth.any():
        return {}
    ranks = ranked(scores, f"anomaly_auroc{suffix}")
    return {
        f"anomaly_auroc{suffix}": float(roc_auc_score(truth, ranks)),
        f"anomaly_auprc{suffix}": float(average_precision_score(truth, ranks)),
    }


def base_rate(is_anomaly: np.ndarray) -> dict[str, float]:
    return {"anomaly_base_rate": float(np.mean(np.asarray(is_anomaly, dtype=bool)))}
