"""Synthetic mode: distance concentration of L_k on i.i.d. data (Aggarwal, Hinneburg & Keim 2001).

N points with i.i.d. coordinates (uniform on [0, 1) or standard normal) in d dimensions, and a
query: the origin, or one more point drawn from the same distribution ("point"). Per trial,
Dmax_k and Dmin_k are the largest and smallest L_k distances from the query to the N points.

- Absolute contrast Dmax_k - Dmin_k grows like d^(1/k - 1/2) (Theorem 2 of the paper for
  uniform data; the same central-limit argument gives the rate for any i.i.d. coordinates with
  a finite 2k-th moment). ``fits`` holds the least-squares slope of log(mean contrast) on
  log d over the dims >= fit_from, beside 1/k - 1/2. L_inf has no such power law: theory null.
- Relative contrast RC_k = (Dmax_k - Dmin_k) / Dmin_k falls like d^(-1/2) for every finite k;
  for N = 2 uniform points and the origin query, lim sqrt(d) E[RC_k] = C / sqrt(2k + 1),
  C = 2 / sqrt(pi) (a delta-method argument: sum U^k is asymptotically normal).
- ``l2_below_l1``: per d, the fraction of trials in which RC_2 < RC_1 (the paper's Table 2).

Random numbers: trial t of dimension d takes its points, then (for "point") its query, from
streams seeded by (seed, d, 0) and (seed, d, 1), drawn in trial order. Results are therefore
the same whatever the dims list, the k list, or how many trials fit in memory at once, and all
k values of a trial see the same points (so RC_1 and RC_2 are paired).
Memory: trials are drawn in chunks of at most CHUNK_VALUES coordinates (float32).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from lpae.contrast.distances import k_json, power_sums_t, relative_contrast, to_distance

DISTRIBUTIONS = ("uniform", "normal")
QUERIES = ("origin", "point")
CHUNK_VALUES = 1 << 24  # coordinates drawn at once: 64 MiB of float32


def check_settings(
    distribution: str, dims: Sequence[int], n_points: int, trials: int, query: str
) -> tuple[int, ...]:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}; allowed: {', '.join(DISTRIBUTIONS)}")
    if query not in QUERIES:
        raise ValueError(f"unknown query {query!r}; allowed: {', '.join(QUERIES)}")
    dims = tuple(int(d) for d in dims)
    if not dims:
        raise ValueError("dims: give at least one dimension, e.g. 2,10,100,1000")
    if any(d < 1 for d in dims):
        raise ValueError(f"dims must be positive integers, got {list(dims)}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dims: a dimension is given twice in {list(dims)}")
    if n_points < 2:
        raise ValueError(f"n-points must be at least 2 (a nearest and a farthest point), got {n_points}")
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    return dims


def draw(rng: np.random.Generator, distribution: str, shape: tuple[int, ...]) -> np.ndarray:
    if distribution == "uniform":
        return rng.random(shape, dtype=np.float32)
    return rng.standard_normal(shape, dtype=np.float32)


def trial_distances(
    distribution: str,
    d: int,
    ks: Sequence[float],
    n_points: int,
    trials: int,
    query: str,
    seed: int,
    backend: str | None = None,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per k, the power sums (Smin, Smax) of every trial's nearest and farthest point: (trials,) each."""
    point_rng = np.random.default_rng([seed, d, 0])
    query_rng = np.random.default_rng([seed, d, 1])
    per_chunk = max(1, min(trials, CHUNK_VALUES // (n_points * d)))
    origin = np.zeros((1, d), np.float32)
    result = {k: (np.empty(trials), np.empty(trials)) for k in ks}
    for start in range(0, trials, per_chunk):
        n = min(per_chunk, trials - start)
        x = draw(point_rng, distribution, (n, d, n_points))  # (n, d, N): trial, feature, point
        if query == "point":
            # D(q, x) depends on x - q only: shift each trial so that its query is the origin
            # (the kernel forms the same float32 difference itself).
            x -= draw(query_rng, distribution, (n, d))[:, :, None]
        points_t = x.transpose(1, 0, 2).reshape(d, n * n_points)  # (d, n N), a copy unless n == 1
        for k in ks:
            sums = power_sums_t(origin, points_t, k, backend).reshape(n, n_points)
            smin, smax = result[k]
            smin[start : start + n] = sums.min(axis=1)
            smax[start : start + n] = sums.max(axis=1)
    return result


def mean_se(values: np.ndarray) -> tuple[float, float | None]:
    """Mean and its standard error (None for a single value)."""
    if len(values) < 2:
        return float(values.mean()), None
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def fit_exponent(dims: Sequence[int], values: Sequence[float]) -> tuple[float | None, float | None]:
    """Slope (and its standard error) of log(value) on log(d); None when under two usable points."""
    pairs = [(d, v) for d, v in zip(dims, values, strict=True) if v is not None and v > 0]
    if len(pairs) < 2 or len({d for d, _ in pairs}) < 2:
        return None, None
    log_d, log_v = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    fit = stats.linregress(log_d, log_v)
    return float(fit.slope), (float(fit.stderr) if len(pairs) > 2 else None)


def synthetic_contrast(
    distribution: str = "uniform",
    dims: Sequence[int] = (2, 5, 10, 20, 50, 100, 200, 1000),
    ks: Sequence[float] = (0.1, 0.3, 0.5, 1.0, 2.0, 3.0, math.inf),
    n_points: int = 1000,
    trials: int = 20,
    query: str = "origin",
    seed: int = 0,
    fit_from: int = 10,
    backend: str | None = None,
) -> dict[str, Any]:
    """The JSON report of ``lpae contrast --distribution ...``: rows, fits and l2_below_l1."""
    dims = check_settings(distribution, dims, n_points, trials, query)
    if not ks:
        raise ValueError("k: give at least one value, e.g. 0.5,1,2,inf")
    rows: list[dict[str, Any]] = []
    rel_by_d: dict[int, dict[float, np.ndarray]] = {}
    for d in dims:
        per_k = trial_distances(distribution, d, ks, n_points, trials, query, seed, backend)
        rel_by_d[d] = {}
        for k, (smin, smax) in per_k.items():
            dmin, dmax = to_distance(smin, k), to_distance(smax, k)
            with np.errstate(invalid="ignore"):
                abs_contrast = dmax - dmin  # (trials,); inf - inf = nan only where D_k overflows
            rel_contrast = relative_contrast(smin, smax, k)
            rel_by_d[d][k] = rel_contrast
            abs_mean, abs_se = mean_se(abs_contrast)
            rel_mean, rel_se = mean_se(rel_contrast)
            rows.append(
                {
                    "d": d,
                    "k": k_json(k),
                    "n_points": n_points,
                    "trials": trials,
                    "abs_contrast": abs_mean,
                    "abs_contrast_se": abs_se,
                    "rel_contrast": rel_mean,
                    "rel_contrast_se": rel_se,
                    "dmin_mean": float(dmin.mean()),
                    "dmax_mean": float(dmax.mean()),
                }
            )
    report: dict[str, Any] = {
        "mode": "synthetic",
        "distribution": distribution,
        "query": query,
        "n_points": n_points,
        "trials": trials,
        "seed": seed,
        "dims": list(dims),
        "k": [k_json(k) for k in ks],
        "rows": rows,
        "fits": fits(rows, ks, fit_from),
    }
    if 1.0 in ks and 2.0 in ks:
        report["l2_below_l1"] = [
            {
                "d": d,
                "fraction": float(np.mean(rel_by_d[d][2.0] < rel_by_d[d][1.0])),
                "trials": trials,
            }
            for d in dims
        ]
    return report


def fits(rows: list[dict[str, Any]], ks: Sequence[float], fit_from: int) -> list[dict[str, Any]]:
    """Per k, the growth exponents of the absolute and relative contrast in d, beside theory."""
    out = []
    for k in ks:
        mine = sorted((r for r in rows if r["k"] == k_json(k) and r["d"] >= fit_from), key=lambda r: r["d"])
        dims = [r["d"] for r in mine]
        exponent, exponent_se = fit_exponent(dims, [r["abs_contrast"] for r in mine])
        rel_exponent, rel_exponent_se = fit_exponent(dims, [r["rel_contrast"] for r in mine])
        finite = math.isfinite(k)
        out.append(
            {
                "k": k_json(k),
                "dims": dims,
                "exponent": exponent,
                "exponent_se": exponent_se,
                "theory": 1 / k - 0.5 if finite else None,
                "rel_exponent": rel_exponent,
                "rel_exponent_se": rel_exponent_se,
                "rel_theory": -0.5 if finite else None,
            }
        )
    return out
