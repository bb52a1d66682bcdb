"""Cross-metric reconstruction error: every run scored under every L_q, whatever its training loss.

With the residual r = x_hat - x over all N test samples of D elements each:

    recon_l{q}  = (mean_{n,i} |r_ni|^q)^(1/q)       the power mean, q = 0.5, 1, 2
    recon_linf  = mean_n max_i |r_ni|                the mean over samples of the worst element

q = 1 is the mean absolute error, q = 2 the root mean squared error; q = 0.5 weights small
errors more and is least moved by a few large ones. Zhao et al. (2017) found that networks
trained with L1 reached lower L2 error than networks trained with L2: the reason to score every
model under every q rather than only under its own loss.

The same formulas give the error against a clean signal (``clean_l1``, ``clean_l2``) when the
data set has one (synthetic data): denoising quality.
"""

from __future__ import annotations

import numpy as np

from lpae.metrics.registry import CROSS_METRIC, Metric, declare

POWER_MEAN_ORDERS = (0.5, 1.0, 2.0)
PREPROCESSED, ORIGINAL = "preprocessed units", "original units"
CROSS = (CROSS_METRIC,)

declare(
    Metric("recon_l0.5", "power-mean error, q = 0.5", PREPROCESSED, "lower", CROSS),
    Metric("recon_l1", "mean absolute error", PREPROCESSED, "lower", CROSS),
    Metric("recon_l2", "root mean squared error", PREPROCESSED, "lower", CROSS),
    Metric("recon_linf", "mean of per-sample max |error|", PREPROCESSED, "lower", CROSS),
    Metric("recon_l0.5_orig", "power-mean error q = 0.5, original units", ORIGINAL, "lower"),
    Metric("recon_l1_orig", "mean absolute error, original units", ORIGINAL, "lower"),
    Metric("recon_l2_orig", "root mean squared error, original units", ORIGINAL, "lower"),
    Metric("recon_linf_orig", "mean max |error|, original units", ORIGINAL, "lower"),
    Metric("clean_l1", "mean absolute error against the clean signal", PREPROCESSED, "lower", CROSS),
    Metric("clean_l2", "root mean squared error against the clean signal", PREPROCESSED, "lower", CROSS),
    Metric("clean_l1_orig", "clean-signal mean absolute error, original units", ORIGINAL, "lower"),
    Metric("clean_l2_orig", "clean-signal root mean squared error, original units", ORIGINAL, "lower"),
)


def power_mean(residual: np.ndarray, q: float) -> float:
    """(mean |r|^q)^(1/q) over every element of ``residual``."""
    if not q > 0:
        raise ValueError(f"power mean order q must be > 0, got {q}")
    magnitude = np.abs(np.asarray(residual, dtype=np.float64))
    if q == 0.5:
        return float(np.mean(np.sqrt(magnitude)) ** 2)
    if q == 1:
        return float(np.mean(magnitude))
    if q == 2:
        return float(np.sqrt(np.mean(np.square(magnitude))))
    return float(np.mean(magnitude**q) ** (1.0 / q))


def order_name(q: float) -> str:
    """0.5 -> 'l0.5', 1.0 -> 'l1'."""
    return f"l{q:g}"


def worst_element_mean(residual: np.ndarray) -> float:
    """mean over samples (dim 0) of the largest |r| of each sample."""
    magnitude = np.abs(np.asarray(residual, dtype=np.float64)).reshape(len(residual), -1)  # (N, D)
    return float(magnitude.max(axis=1).mean())


def check_pair(x: np.ndarray, x_hat: np.ndarray) -> None:
    if np.shape(x) != np.shape(x_hat):
        raise ValueError(f"data of shape {np.shape(x)} and reconstruction of shape {np.shape(x_hat)} differ")
    if np.ndim(x) < 2 or len(x) == 0:
        raise ValueError(f"expected at least one sample of shape (N, features, ...), got {np.shape(x)}")


def reconstruction_metrics(x: np.ndarray, x_hat: np.ndarray, suffix: str = "") -> dict[str, float]:
    """recon_l0.5, recon_l1, recon_l2 and recon_linf (each with ``suffix``) of x_hat against x (N, ...)."""
    check_pair(x, x_hat)
    magnitude = np.abs(np.asarray(x_hat, dtype=np.float64) - x)  # (N, ...) |r|, computed once
    found = {f"recon_{order_name(q)}{suffix}": power_mean(magnitude, q) for q in POWER_MEAN_ORDERS}
    found[f"recon_linf{suffix}"] = worst_element_mean(magnitude)
    return found


def clean_metrics(clean: np.ndarray, x_hat: np.ndarray, suffix: str = "") -> dict[str, float]:
    """clean_l1 and clean_l2 (with ``suffix``): the error of x_hat against the noise-free signal."""
    check_pair(clean, x_hat)
    residual = np.asarray(x_hat, dtype=np.float64) - clean
    return {f"clean_l1{suffix}": power_mean(residual, 1.0), f"clean_l2{suffix}": power_mean(residual, 2.0)}
