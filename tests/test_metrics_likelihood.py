"""Likelihood metrics against scipy.stats and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lpae.criteria import build
from lpae.metrics import bits_per_dim, gennorm_nll, own_nll_bpd, residual_shape
from lpae.metrics.likelihood import (
    GENNORM_FIT_ELEMENTS,
    SHAPE_FIT_ELEMENTS,
    gennorm_sample_nll,
    per_feature_scaled,
    subsample,
)


def test_bits_per_dim_is_nats_over_d_ln2() -> None:
    assert bits_per_dim(64 * math.log(2) * 3.5, 64) == pytest.approx(3.5)


def test_own_nll_equals_scipy_for_a_fixed_scale_gaussian() -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((50, 8)))
    out = torch.from_numpy(rng.standard_normal((50, 8)))
    found = own_nll_bpd(build("gaussian:scale=0.5"), x, out)
    nats = -stats.norm(out.numpy(), 0.5).logpdf(x.numpy()).sum(axis=1).mean()
    assert found == {"nll_own_bpd": pytest.approx(nats / (8 * math.log(2)), rel=1e-10)}


def test_own_nll_is_absent_for_plain_losses() -> None:
    x = torch.zeros(4, 3)
    assert own_nll_bpd(build("lp:1"), x, x + 1) == {}


def test_gaussian_residuals_of_known_variance_give_p_2_and_the_gaussian_entropy() -> None:
    sigma = 0.3
    residual = sigma * np.random.default_rng(1).standard_normal((2000, 200))  # 400k > fit subsample
    assert residual.size > GENNORM_FIT_ELEMENTS
    found = gennorm_nll(residual)
    assert found["nll_gennorm_p"] == pytest.approx(2.0, abs=0.03)
    assert found["nll_gennorm_scale"] == pytest.approx(math.sqrt(2) * sigma, rel=0.01)  # alpha = sqrt2 sigma
    entropy_bits = 0.5 * math.log2(2 * math.pi * math.e * sigma**2)  # differential entropy per element
    assert found["nll_gennorm_bpd"] == pytest.approx(entropy_bits, abs=0.005)


def test_gennorm_nll_is_the_mean_scipy_nll_at_the_reported_shape_and_scale() -> None:
    residual = stats.laplace(scale=0.2).rvs(size=(300, 10), random_state=np.random.default_rng(2))
    found = gennorm_nll(residual)
    p, alpha = found["nll_gennorm_p"], found["nll_gennorm_scale"]
    assert alpha == pytest.approx((p * np.mean(np.abs(residual) ** p)) ** (1 / p), rel=1e-9)
    nats = -stats.gennorm(p, scale=alpha).logpdf(residual).mean()
    assert found["nll_gennorm_bpd"] == pytest.approx(nats / math.log(2), rel=1e-9)
    # the fitted shape is the ML shape: any other shape at its own ML scale scores worse
    for other in (p * 0.8, p * 1.25):
        other_alpha = (other * np.mean(np.abs(residual) ** other)) ** (1 / other)
        assert -stats.gennorm(other, scale=other_alpha).logpdf(residual).mean() > nats


def test_gennorm_sample_nll_uses_the_shape_and_scale_fitted_on_other_residuals() -> None:
    rng = np.random.default_rng(3)
    fit_residual = stats.gennorm(1.3, scale=0.4).rvs(size=5000, random_state=rng)
    x = torch.from_numpy(rng.standard_normal((20, 6)))
    x_hat = x + torch.from_numpy(0.3 * rng.standard_normal((20, 6)))
    scores = gennorm_sample_nll(fit_residual, x, x_hat)
    fitted = gennorm_nll(fit_residual)
    reference = -stats.gennorm(fitted["nll_gennorm_p"], scale=fitted["nll_gennorm_scale"]).logpdf(
        (x_hat - x).numpy()
    )
    np.testing.assert_allclose(scores.numpy(), reference.sum(axis=1), rtol=1e-9)


@pytest.mark.parametrize(
    ("noise", "key", "truth", "tolerance"),
    [
        (stats.norm(scale=0.5), "residual_gennorm_p", 2.0, 0.1),
        (stats.laplace(scale=0.5), "residual_gennorm_p", 1.0, 0.06),
        (stats.gennorm(0.7, scale=0.5), "residual_gennorm_p", 0.7, 0.05),
        (stats.t(3, scale=0.5), "residual_t_df", 3.0, 0.4),
        (stats.t(1.5, scale=0.5), "residual_t_df", 1.5, 0.15),
    ],
)
def test_residual_shape_recovers_the_noise_shape(
    noise: object, key: str, truth: float, tolerance: float
) -> None:
    residual = noise.rvs(size=(400, 100), random_state=np.random.default_rng(4))  # type: ignore[attr-defined]
    found = residual_shape(residual)
    assert set(found) == {"residual_gennorm_p", "residual_t_df"}
    assert found[key] == pytest.approx(truth, abs=tolerance)


def standardised_noise(noise: object, n_rows: int = 400, n_features: int = 64) -> np.ndarray:
    """Residuals of a perfect reconstruction of standardised data: x = signal + noise, with the
    features' signal spreads log-uniform over a factor 25, each feature standardised; the residual
    is the noise over each feature's standard deviation, so its scale differs by feature."""
    rng = np.random.default_rng(7)
    signal = rng.standard_normal((n_rows, n_features)) * np.exp(
        rng.uniform(np.log(0.2), np.log(5), n_features)
    )
    x = signal + 0.3 * noise.rvs(size=(n_rows, n_features), random_state=rng)  # type: ignore[attr-defined]
    mean, sd = x.mean(axis=0), x.std(axis=0)
    return (signal - mean) / sd - (x - mean) / sd


@pytest.mark.parametrize(
    ("noise", "truth", "pooled_error"),
    [(stats.norm(), 2.0, 1.0), (stats.laplace(), 1.0, 0.3), (stats.gennorm(0.6), 0.6, 0.0)],
)
def test_residual_shape_scales_each_feature_before_fitting(
    noise: object, truth: float, pooled_error: float
) -> None:
    residual = standardised_noise(noise)
    assert residual_shape(residual)["residual_gennorm_p"] == pytest.approx(truth, abs=0.15)
    # pooled, the features' different scales make a scale mixture that reads heavier-tailed
    pooled = stats.gennorm.fit(subsample(residual, SHAPE_FIT_ELEMENTS), floc=0)[0]
    assert truth - pooled >= pooled_error


def test_per_feature_scaled_divides_by_each_features_median_magnitude() -> None:
    residual = np.array([[1.0, 0.0, 0.0, -4.0], [-2.0, 0.0, 3.0, 2.0], [3.0, 0.0, 0.0, 8.0]])
    scaled = per_feature_scaled(residual)  # medians of |r|: 2, 0 (all zero: left out), 0 -> mean 1, 4
    np.testing.assert_allclose(scaled, [[0.5, 0.0, -1.0], [-1.0, 3.0, 0.5], [1.5, 0.0, 2.0]])
    np.testing.assert_allclose(per_feature_scaled(np.array([1.0, -3.0, 2.0])), [[0.5], [-1.5], [1.0]])
    assert per_feature_scaled(np.zeros((3, 2, 2))).shape == (3, 0)


def test_perfect_reconstruction_has_no_likelihood_keys() -> None:
    zeros = np.zeros((10, 4))
    assert gennorm_nll(zeros) == {} and residual_shape(zeros) == {}


def test_subsample_is_seeded_and_capped() -> None:
    values = np.arange(1000.0)
    first, again = subsample(values, 100), subsample(values, 100)
    np.testing.assert_array_equal(first, again)
    assert len(first) == 100 and len(np.unique(first)) == 100
    np.testing.assert_array_equal(subsample(values, 5000), values)
