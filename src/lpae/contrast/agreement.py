"""Nearest-neighbour class agreement with uncertainty, and paired comparisons between metrics.

For each query q and metric L_k, a_k(q) is the number of its L nearest neighbours that share
its class. The agreement of L_k is the fraction sum_q a_k(q) / (N L).

- Interval: percentile bootstrap over queries (scipy.stats.bootstrap), 95 % by default.
- Paired comparison of L_a and L_b: the per-query difference (a_a(q) - a_b(q)) / L, its mean
  with a percentile bootstrap interval, and the Wilcoxon signed-rank p-value (scipy.stats.wilcoxon)
  as a second opinion. A difference is called significant when its interval excludes 0.

Caveat, stated in every report: neighbourhoods overlap, so queries are not independent and the
intervals are somewhat too narrow; with several pairs of k, expect about one in twenty pairs
to come out "significant" by chance alone. Mirkes, Allohibi & Gorban (Entropy 2020) found most
kNN differences between p = 0.5, 1 and 2 not significant: report what the data says.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats

from lpae.contrast.distances import k_json, k_label

CONFIDENCE = 0.95


def bootstrap_mean_interval(
    values: np.ndarray, n_resamples: int, seed: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of values (N,)."""
    values = np.asarray(values, np.float64)
    if np.all(values == values[0]):  # every resample has the same mean
        return float(values[0]), float(values[0])
    batch = max(1, (1 << 22) // len(values))  # at most 4M resampled values in memory at once
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (values,),
            np.mean,
            n_resamples=n_resamples,
            batch=batch,
            vectorized=True,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def agreement_row(
    k: float, counts: np.ndarray, n_neighbors: int, n_resamples: int, seed: int
) -> dict[str, Any]:
    """One metric's agreement: total count, fraction and bootstrap interval."""
    fractions = counts / n_neighbors  # (N,) per-query agreement in [0, 1]
    low, high = bootstrap_mean_interval(fractions, n_resamples, seed)
    return {
        "k": k_json(k),
        "neighbors": n_neighbors,
        "count": int(counts.sum()),
        "total": int(len(counts) * n_neighbors),
        "fraction": float(fractions.mean()),
        "ci_low": low,
        "ci_high": high,
    }


def paired_comparison(
    name_a: str,
    counts_a: np.ndarray,
    name_b: str,
    counts_b: np.ndarray,
    n_neighbors: int,
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Compare two agreement counts over the same queries (a minus b)."""
    diff = (counts_a.astype(np.float64) - counts_b) / n_neighbors  # (N,)
    low, high = bootstrap_mean_interval(diff, n_resamples, seed)
    if np.all(diff == 0):
        p_value = 1.0
    else:
        p_value = float(stats.wilcoxon(counts_a, counts_b, zero_method="wilcox").pvalue)
    significant = bool(low > 0 or high < 0)
    mean = float(diff.mean())
    verdict = (
        f"{name_a} {'above' if mean > 0 else 'below'} {name_b}: significant"
        if significant
        else "not significant (the 95% interval contains 0)"
    )
    return {
        "a": name_a,
        "b": name_b,
        "fraction_a": float(counts_a.mean() / n_neighbors),
        "fraction_b": float(counts_b.mean() / n_neighbors),
        "difference": mean,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "significant": significant,
        "summary": f"{name_a} - {name_b} = {mean:+.4f} (95% CI {low:+.4f} .. {high:+.4f}), {verdict}",
    }


def compare_all(
    counts: dict[float, np.ndarray], n_neighbors: int, n_resamples: int, seed: int
) -> list[dict[str, Any]]:
    """Paired comparisons for every pair of k values, in the order given."""
    ks = list(counts)
    rows = []
    for i, k_a in enumerate(ks):
        for j in range(i + 1, len(ks)):
            k_b = ks[j]
            row = paired_comparison(
                k_label(k_a),
                counts[k_a],
                k_label(k_b),
                counts[k_b],
                n_neighbors,
                n_resamples,
                seed + 1000 + 100 * i + j,
            )
            rows.append({"k_a": k_json(k_a), "k_b": k_json(k_b), **row})
    return rows
