"""Discretized likelihoods: the probability of a bin under a location-scale family's CDF.

On data stored on a lattice of step delta (8-bit pixels, integer counts), a value x stands for
its bin [x - delta/2, x + delta/2], and its likelihood is the probability of that bin,

    P(x) = F((x + delta/2 - mu) / s) - F((x - delta/2 - mu) / s),

with F the family's CDF at unit scale; the lowest and highest bins of a feature take the tails
(lower edge -inf, upper edge +inf), as the discretized logistic of PixelCNN++ does (Salimans et
al. 2017), so the bins of a feature partition the real line and their probabilities sum to 1.
Then -log P >= 0: a density can spike on the lattice points without bound, a bin probability is
at most 1 (Theis, van den Oord & Bethge 2016).

Bins are given as offsets from the data: ``lower`` = -delta/2 or -inf, ``upper`` = +delta/2 or
+inf per element; an element with lower == upper == 0 is continuous and keeps its density.

Stable in log space (:func:`log_bin_probability`): every family here is symmetric, so only
log F(z) for z <= 0 is needed (:data:`LOG_CDF_LEFT`), and with a = -|l|, b = -|u|:

- bin left of 0 (u <= 0): log F(u) + log(1 - exp(log F(l) - log F(u)));
- bin right of 0 (l >= 0): log S(l) + log(1 - exp(log S(u) - log S(l))), S(z) = F(-z);
- bin across 0: log(1 - F(l) - S(u)), with F(l), S(u) <= 1/2,

so a bin far in a tail never subtracts two numbers near 1. The left CDFs at unit scale:

- gaussian (sigma): scipy.special.log_ndtr(z);
- laplace (b): log(1/2) + z;
- gennorm (alpha, shape p): F(z) = Q(1/p, |z|^p) / 2 with Q the regularized upper incomplete
  gamma function (scipy.special.gammaincc); where Q underflows (|z|^p beyond about 700), its
  asymptotic form log Q(a, t) = (a - 1) log t - t - lgamma(a) + log(1 + (a-1)/t + (a-1)(a-2)/t^2)
  (DLMF 8.11.2);
- student_t (s, df nu): F(z) = I_x(nu/2, 1/2) / 2, x = nu / (nu + z^2), the regularized incomplete
  beta function, through scipy.special.stdtr (what scipy.stats.t.cdf calls); where it underflows,
  a log-space series or quadrature of the tail (:func:`student_t_far_left`).

Evaluation only: numpy float64, not differentiable.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

from lpae.criteria.student_t import student_t_log_normalizer

LOG_HALF = math.log(0.5)
FAR_SERIES_TERMS = 60  # terms of the Student-t tail series at x <= 1/2: error below 2^-60
LAGUERRE_NODES = 32


def log1mexp(a: np.ndarray) -> np.ndarray:
    """log(1 - exp(a)) for a <= 0, accurate near 0 and far below it (Maechler 2012)."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return np.where(a > -math.log(2.0), np.log(-np.expm1(a)), np.log1p(-np.exp(a)))


def gaussian_left(z: np.ndarray, shape: float | None) -> np.ndarray:
    return np.asarray(special.log_ndtr(z), dtype=np.float64)


def laplace_left(z: np.ndarray, shape: float | None) -> np.ndarray:
    return LOG_HALF + z


def gennorm_left(z: np.ndarray, shape: float | None) -> np.ndarray:
    if shape is None:
        raise ValueError("gennorm: the discretized likelihood needs the shape p")
    a = 1.0 / shape
    t = np.abs(z) ** shape
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = np.log(special.gammaincc(a, t))
        safe_t = np.where(t > 0, t, 1.0)
        series = 1 + (a - 1) / safe_t + (a - 1) * (a - 2) / safe_t**2
        tail = (a - 1) * np.log(safe_t) - safe_t - special.gammaln(a) + np.log(np.abs(series))
    return LOG_HALF + np.where(np.isfinite(direct) | np.isinf(t), direct, tail)


def student_t_left(z: np.ndarray, shape: float | None) -> np.ndarray:
    if shape is None:
        raise ValueError("student_t: the discretized likelihood needs the degrees of freedom")
    with np.errstate(divide="ignore"):
        direct = np.log(special.stdtr(shape, z))
    if bool((np.isfinite(direct) | np.isinf(z)).all()):
        return np.asarray(direct, dtype=np.float64)
    return np.where(np.isfinite(direct) | np.isinf(z), direct, student_t_far_left(z, shape))


def student_t_far_left(z: np.ndarray, df: float) -> np.ndarray:
    """log F(z) for z < 0 where stdtr underflows (module docstring): with x = df / (df + z^2), the
    series I_x(a, 1/2) = x^a (1 - x)^(1/2) / (a B(a, 1/2)) sum_k (a + 1/2)_k / (a + 1)_k x^k
    (DLMF 8.17.8) for x <= 1/2 (heavy tails, huge |z|), and for x > 1/2 (large df, a nearly
    Gaussian tail) the tail integral int_|z|^inf f by Gauss-Laguerre quadrature in the local rate
    of decay lam = (df + 1) |z| / (df + z^2): S = f(|z|) / lam sum_i w_i exp(h(v_i) + v_i),
    h(v) = log f(|z| + v / lam) - log f(|z|)."""
    a, square = df / 2.0, np.where(np.isfinite(z), z * z, 1.0)
    log_x = math.log(df) - np.log(df + square)
    log_prefactor = a * log_x + 0.5 * np.log(square / (df + square)) - math.log(a) - special.betaln(a, 0.5)
    x = np.exp(log_x)
    term, series = np.ones_like(x), np.ones_like(x)
    for k in range(FAR_SERIES_TERMS):
        term = term * (a + 0.5 + k) / (a + 1 + k) * x
        series = series + term
    by_series = log_prefactor + np.log(series)
    magnitude = np.sqrt(square)
    rate = (df + 1) * magnitude / (df + square)
    nodes, weights = np.polynomial.laguerre.laggauss(LAGUERRE_NODES)
    shifted = magnitude[..., None] + nodes / rate[..., None]  # (..., nodes)
    h = -0.5 * (df + 1) * (np.log1p(shifted**2 / df) - np.log1p(square / df)[..., None])
    log_density = -0.5 * (df + 1) * np.log1p(square / df) - float(student_t_log_normalizer(df))
    by_quadrature = log_density - np.log(rate) + np.log((weights * np.exp(h + nodes)).sum(axis=-1))
    return np.where(x <= 0.5, LOG_HALF + by_series, by_quadrature)


# log F(z) at unit scale for z <= 0, by family; the shape is p (gennorm), df (student_t) or None.
LOG_CDF_LEFT: dict[str, Callable[[np.ndarray, float | None], np.ndarray]] = {
    "gaussian": gaussian_left,
    "laplace": laplace_left,
    "gennorm": gennorm_left,
    "student_t": student_t_left,
}


def log_bin_probability(
    family: str, lower: np.ndarray, upper: np.ndarray, shape: float | None = None
) -> np.ndarray:
    """log P(lower < Z <= upper) for Z of the family at unit scale (module docstring); the bounds
    are standardised ((edge - mu) / s), may be -inf / +inf, and need lower < upper."""
    if family not in LOG_CDF_LEFT:
        raise ValueError(f"no discretized likelihood for {family!r}; families: {', '.join(LOG_CDF_LEFT)}")
    lower, upper = np.broadcast_arrays(np.asarray(lower, np.float64), np.asarray(upper, np.float64))
    if not bool((upper > lower).all()):
        raise ValueError("log_bin_probability: every bin needs lower < upper")
    left = LOG_CDF_LEFT[family]
    # log F(-|l|) and log F(-|u|)
    log_lower, log_upper = left(-np.abs(lower), shape), left(-np.abs(upper), shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        left_of_zero = log_upper + log1mexp(log_lower - log_upper)
        right_of_zero = log_lower + log1mexp(log_upper - log_lower)
        across = np.log1p(-(np.exp(log_lower) + np.exp(log_upper)))
    return np.where(upper <= 0, left_of_zero, np.where(lower >= 0, right_of_zero, across))


def element_nll(
    family: str,
    residual: np.ndarray,
    log_scale: np.ndarray | float,
    lower: np.ndarray,
    upper: np.ndarray,
    shape: float | None = None,
) -> np.ndarray:
    """-log P of each quantized element's bin, for residuals r = mu - x and bin offsets from x
    (``lower`` < ``upper``); elements with lower == upper == 0 get nan (the caller keeps their
    density). The bin [x + lower, x + upper] standardised: ((x + offset) - mu) / s = (offset - r) / s."""
    residual = np.asarray(residual, np.float64)
    scale = np.exp(np.asarray(log_scale, np.float64))
    quantized = np.asarray(upper) > np.asarray(lower)
    low = np.where(quantized, (lower - residual) / scale, -1.0)
    high = np.where(quantized, (upper - residual) / scale, 1.0)
    nll = -log_bin_probability(family, low, high, shape)
    return np.where(quantized, nll, np.nan)
