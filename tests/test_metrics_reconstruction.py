"""Reconstruction metrics against known answers and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from lpae.metrics import clean_metrics, power_mean, reconstruction_metrics

KEYS = ("recon_l0.5", "recon_l1", "recon_l2", "recon_linf")


def test_perfect_reconstruction_is_zero_everywhere() -> None:
    x = np.random.default_rng(0).standard_normal((7, 3, 4, 4))
    metrics = reconstruction_metrics(x, x.copy())
    assert set(metrics) == set(KEYS)
    assert all(value == 0.0 for value in metrics.values())


@pytest.mark.parametrize("offset", [0.5, -2.0, 3e-3])
def test_constant_offset_gives_the_offset_under_every_metric(offset: float) -> None:
    x = np.random.default_rng(1).standard_normal((11, 6))
    metrics = reconstruction_metrics(x, x + offset, suffix="_orig")
    assert set(metrics) == {f"{key}_orig" for key in KEYS}
    for value in metrics.values():
        assert value == pytest.approx(abs(offset), rel=1e-12)


def test_gaussian_residuals_of_known_variance() -> None:
    """E|r|^q = sigma^q 2^(q/2) Gamma((q+1)/2) / sqrt(pi) for r ~ N(0, sigma^2)."""
    sigma = 0.7
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2000, 500))
    x_hat = x + sigma * rng.standard_normal(x.shape)
    metrics = reconstruction_metrics(x, x_hat)
    for q in (0.5, 1.0, 2.0):
        moment = sigma**q * 2 ** (q / 2) * special.gamma((q + 1) / 2) / math.sqrt(math.pi)
        assert metrics[f"recon_l{q:g}"] == pytest.approx(moment ** (1 / q), rel=3e-3)
    assert metrics["recon_l1"] == pytest.approx(sigma * math.sqrt(2 / math.pi), rel=3e-3)
    assert metrics["recon_l2"] == pytest.approx(sigma, rel=3e-3)


def test_power_means_equal_brute_force_and_order() -> None:
    rng = np.random.default_rng(3)
    residual = rng.standard_t(2, size=(40, 9))
    for q in (0.5, 1.0, 1.5, 2.0, 3.0):
        brute = sum(abs(float(r)) ** q for r in residual.ravel()) / residual.size
        assert power_mean(residual, q) == pytest.approx(brute ** (1 / q), rel=1e-10)
    # power means increase with q (Jensen), and the mean of per-sample maxima bounds them all
    means = [power_mean(residual, q) for q in (0.5, 1.0, 2.0)]
    assert means == sorted(means)
    linf = reconstruction_metrics(np.zeros_like(residual), residual)["recon_linf"]
    assert linf == pytest.approx(np.abs(residual).max(axis=1).mean())
    assert linf >= means[-1]


def test_clean_metrics_measure_against_the_clean_signal() -> None:
    clean = np.linspace(-1, 1, 30).reshape(5, 6)
    metrics = clean_metrics(clean, clean + 0.25)
    assert metrics == {"clean_l1": pytest.approx(0.25), "clean_l2": pytest.approx(0.25)}
    assert set(clean_metrics(clean, clean, "_orig")) == {"clean_l1_orig", "clean_l2_orig"}


def test_bad_shapes_and_orders_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(3, 3\)"):
        reconstruction_metrics(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="q must be > 0"):
        power_mean(np.ones(3), 0.0)
