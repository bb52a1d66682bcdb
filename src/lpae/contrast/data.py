"""Data mode: relative contrast and neighbour class agreement of L_k metrics on real features.

Every point is a query against all the others (lpae.contrast.neighbours). Per k the result has

- a row: RC_k(q) = (Dmax_k(q) - Dmin_k(q)) / Dmin_k(q) summarised over queries (mean, its
  standard error, standard deviation, median, quartiles). A query with an exact duplicate has
  Dmin = 0 and RC = inf: such queries are counted in ``n_zero_dmin`` and left out of the
  summary, so one duplicate cannot make the mean infinite;
- with labels and L > 0 neighbours: the class agreement of the L nearest neighbours with a
  bootstrap interval, and paired comparisons between k values (lpae.contrast.agreement).

``dataset_features`` loads a data-set spec and preprocesses it; the preprocessing statistics
are fitted on all rows used, since nothing is trained here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lpae.contrast.agreement import agreement_row, compare_all
from lpae.contrast.distances import k_json
from lpae.contrast.neighbours import same_class_counts, scan
from lpae.data import fit_preprocessor, load

DEFAULT_BOOTSTRAP = 2000


@dataclass
class Analysis:
    """A JSON-ready report and, per k, each query's same-class neighbour count (N,)."""

    report: dict[str, Any]
    counts: dict[float, np.ndarray]


@dataclass
class Features:
    """Rows to analyse: x (N, d) and optional integer labels y (N,)."""

    name: str
    x: np.ndarray
    y: np.ndarray | None
    n_rows: int = 0  # rows of the data set before subsampling (0: as many as x)


DEFAULT_MAX_POINTS = 20_000  # data mode's default subset: every row against every other is quadratic


def dataset_features(
    spec: str, preprocess: str = "standard", max_points: int | None = DEFAULT_MAX_POINTS, seed: int = 0
) -> Features:
    """Load a data set by spec, flatten each sample, subsample (a seeded random subset of
    ``max_points`` rows when there are more; None: every row), then preprocess."""
    dataset = load(spec)
    x = dataset.x.reshape(len(dataset.x), -1)
    n_rows = len(x)
    y = dataset.y
    if max_points is not None:
        if max_points < 2:
            raise ValueError(f"max-points must be at least 2, got {max_points}")
        if max_points < len(x):
            rows = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
            x, y = x[rows], None if y is None else y[rows]
    x = fit_preprocessor(x, preprocess).transform(x)
    return Features(spec, x, y, n_rows)


def summarize(values: np.ndarray) -> dict[str, Any]:
    """Mean, standard error, spread and quartiles of the finite values."""
    finite = values[np.isfinite(values)]
    n = len(finite)
    if n == 0:
        return {"n": 0, "mean": None, "se": None, "std": None, "median": None, "q25": None, "q75": None}
    std = float(finite.std(ddof=1)) if n > 1 else None
    q25, median, q75 = np.quantile(finite, [0.25, 0.5, 0.75])
    return {
        "n": n,
        "mean": float(finite.mean()),
        "se": None if std is None else std / np.sqrt(n),
        "std": std,
        "median": float(median),
        "q25": float(q25),
        "q75": float(q75),
    }


def check_labels(features: Features, n_neighbors: int) -> None:
    if n_neighbors > 0 and features.y is None:
        raise ValueError(
            f"data set {features.name!r} has no labels, and neighbour class agreement needs them "
            "(use a labelled data set, or --neighbors 0 for relative contrast only)"
        )


def analyse(
    features: Features,
    ks: Sequence[float],
    n_neighbors: int = 10,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    backend: str | None = None,
) -> Analysis:
    """Relative contrast rows, agreement rows and paired comparisons for one set of features."""
    check_labels(features, n_neighbors)
    if n_bootstrap < 100:
        raise ValueError(f"bootstrap must be at least 100 resamples, got {n_bootstrap}")
    n_points, n_features = features.x.shape
    rows: list[dict[str, Any]] = []
    counts: dict[float, np.ndarray] = {}
    for k in ks:
        result = scan(features.x, k, n_neighbors, backend)
        rc = result.rel_contrast
        summary = summarize(rc)
        rows.append(
            {
                "k": k_json(k),
                "n_points": n_points,
                "n_features": n_features,
                "rel_contrast": summary["mean"],
                "rel_contrast_se": summary["se"],
                "rel_contrast_std": summary["std"],
                "rel_contrast_median": summary["median"],
                "rel_contrast_q25": summary["q25"],
                "rel_contrast_q75": summary["q75"],
                "n_zero_dmin": int(np.sum(result.dmin == 0)),
                "dmin_mean": float(result.dmin.mean()),
                "dmax_mean": float(result.dmax.mean()),
            }
        )
        if n_neighbors > 0 and features.y is not None:
            counts[k] = same_class_counts(result.neighbours, features.y)
    report: dict[str, Any] = {
        "name": features.name,
        "n_points": n_points,
        "n_features": n_features,
        "rows": rows,
    }
    if counts:
        report["neighbors"] = n_neighbors
        report["agreement"] = [
            agreement_row(k, c, n_neighbors, n_bootstrap, seed + i) for i, (k, c) in enumerate(counts.items())
        ]
        report["comparisons"] = compare_all(counts, n_neighbors, n_bootstrap, seed)
    return Analysis(report, counts)


def data_contrast(
    spec: str,
    ks: Sequence[float],
    preprocess: str = "standard",
    n_neighbors: int = 10,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    max_points: int | None = DEFAULT_MAX_POINTS,
    seed: int = 0,
    backend: str | None = None,
) -> dict[str, Any]:
    """Data mode on a data-set spec: the JSON report of ``lpae contrast --data SPEC``.

    By default at most DEFAULT_MAX_POINTS rows (a seeded random subset; ``max_points=None``: all):
    every row is queried against every other, so the cost grows with the square of the rows.
    The report's ``n_rows`` is the data set's row count, ``seconds`` the analysis' time, and, for
    a subset, ``full_seconds_estimate`` that time scaled by (n_rows / n_points)^2."""
    features = dataset_features(spec, preprocess, max_points, seed)
    started = time.perf_counter()
    analysis = analyse(features, ks, n_neighbors, n_bootstrap, seed, backend)
    seconds = time.perf_counter() - started
    n_points, n_rows = len(features.x), features.n_rows or len(features.x)
    report = {
        "mode": "data",
        "data": spec,
        "preprocess": preprocess,
        "seed": seed,
        "k": [k_json(k) for k in ks],
        "n_rows": n_rows,
        "seconds": seconds,
        **analysis.report,
    }
    if n_points < n_rows:
        report["full_seconds_estimate"] = seconds * (n_rows / n_points) ** 2
    return report
