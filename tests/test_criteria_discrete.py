"""Discretized likelihoods (lpae.criteria.discrete) against scipy.stats CDF differences and mpmath."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from scipy import stats

from lpae.criteria.discrete import element_nll, log1mexp, log_bin_probability

# (family, shape, the scipy distribution at unit scale of the family's own scale)
FAMILIES = [
    ("gaussian", None, stats.norm()),
    ("laplace", None, stats.laplace()),
    ("gennorm", 0.4, stats.gennorm(0.4)),
    ("gennorm", 1.5, stats.gennorm(1.5)),
    ("gennorm", 3.0, stats.gennorm(3.0)),
    ("student_t", 1.0, stats.t(1.0)),
    ("student_t", 2.5, stats.t(2.5)),
    ("student_t", 1e7, stats.t(1e7)),
]
IDS = [f"{family}-{shape}" for family, shape, _ in FAMILIES]


@pytest.mark.parametrize(("family", "shape", "dist"), FAMILIES, ids=IDS)
def test_bin_probability_is_the_scipy_cdf_difference(family: str, shape: float | None, dist) -> None:
    rng = np.random.default_rng(0)
    lower = rng.normal(size=500) * 2
    upper = lower + rng.exponential(size=500)
    # right of 0 through the survival function, so that the reference itself does not cancel
    with np.errstate(divide="ignore"):  # each branch is computed everywhere, used where it is exact
        expected = np.where(
            lower > 0, np.log(dist.sf(lower) - dist.sf(upper)), np.log(dist.cdf(upper) - dist.cdf(lower))
        )
    np.testing.assert_allclose(log_bin_probability(family, lower, upper, shape), expected, rtol=1e-8)


@pytest.mark.parametrize(("family", "shape", "dist"), FAMILIES, ids=IDS)
def test_tail_bins_match_scipy(family: str, shape: float | None, dist) -> None:
    """Open-ended edge bins are the tails: log F(u) and log S(l)."""
    edges = np.array([-3.0, -0.5, 0.0, 0.7, 2.5])
    np.testing.assert_allclose(
        log_bin_probability(family, -np.inf, edges, shape), dist.logcdf(edges), rtol=1e-9
    )
    np.testing.assert_allclose(
        log_bin_probability(family, edges, np.inf, shape), dist.logsf(edges), rtol=1e-9
    )


@pytest.mark.parametrize(("family", "shape", "dist"), FAMILIES, ids=IDS)
def test_bins_of_a_lattice_sum_to_one(family: str, shape: float | None, dist) -> None:
    """Every bin of a lattice, the first and last extended to -inf / +inf, at any location and scale."""
    mu, scale, step = 0.37, 0.8, 0.25
    points = np.arange(-6.0, 6.0 + step / 2, step)
    lower = np.concatenate([[-np.inf], points[1:] - step / 2])
    upper = np.concatenate([points[:-1] + step / 2, [np.inf]])
    total = np.exp(log_bin_probability(family, (lower - mu) / scale, (upper - mu) / scale, shape)).sum()
    assert total == pytest.approx(1.0, abs=1e-12)


def far_tail_reference(family: str, shape: float | None, low: float, high: float) -> float:
    """log(S(low) - S(high)) for 0 < low < high at unit scale, from the closed-form survival
    functions in 50-digit arithmetic (mpmath): erfc, exp, the regularized upper incomplete gamma
    and the regularized incomplete beta functions."""
    mpmath.mp.dps = 50
    a, b = mpmath.mpf(low), mpmath.mpf(high)
    if family == "gaussian":
        survival = lambda z: mpmath.erfc(z / mpmath.sqrt(2)) / 2  # noqa: E731
    elif family == "laplace":
        survival = lambda z: mpmath.exp(-z) / 2  # noqa: E731
    elif family == "gennorm":
        p = mpmath.mpf(shape)
        survival = lambda z: mpmath.gammainc(1 / p, z**p, regularized=True) / 2  # noqa: E731
    else:
        nu = mpmath.mpf(shape)
        survival = lambda z: mpmath.betainc(nu / 2, 0.5, 0, nu / (nu + z * z), regularized=True) / 2  # noqa: E731
    return float(mpmath.log(survival(a) - survival(b)))


@pytest.mark.parametrize(
    ("family", "shape", "low", "high"),
    [
        ("gaussian", None, 40.0, 41.0),
        ("laplace", None, 800.0, 801.0),
        ("gennorm", 3.0, 12.0, 12.5),  # F underflows nowhere, but 1 - F(12) = 0 in float64
        ("gennorm", 0.5, 1e6, 1e6 + 10),
        ("student_t", 1e7, 40.0, 40.5),  # stdtr underflows: the quadrature branch
        ("student_t", 2.5, 1e149, 1e150),  # the series branch
    ],
)
def test_far_tail_bins_are_accurate(family: str, shape: float | None, low: float, high: float) -> None:
    """Bins right of 0 and, mirrored, left of 0, where float64 CDF differences are 0 or -inf."""
    expected = far_tail_reference(family, shape, low, high)
    right = float(log_bin_probability(family, np.array(low), np.array(high), shape))
    left = float(log_bin_probability(family, np.array(-high), np.array(-low), shape))
    assert right == pytest.approx(expected, rel=1e-9)
    assert left == pytest.approx(expected, rel=1e-9)


def test_log1mexp_is_accurate_at_both_ends() -> None:
    a = np.array([-1e-20, -1e-5, -0.5, -2.0, -50.0])
    expected = [float(mpmath.log(1 - mpmath.exp(mpmath.mpf(v)))) for v in a]
    np.testing.assert_allclose(log1mexp(a), expected, rtol=1e-12)


def test_element_nll_is_nonnegative_and_continuous_elements_are_left_out() -> None:
    rng = np.random.default_rng(1)
    residual = rng.normal(size=(50, 4)) * 1e-6  # a spike: scale far below the bin
    lower = np.full_like(residual, -0.5)
    upper = np.full_like(residual, 0.5)
    lower[:, 0] = upper[:, 0] = 0.0  # continuous feature
    lower[:, 1] = -np.inf  # lowest bin
    nll = element_nll("gennorm", residual, math.log(1e-7), lower, upper, shape=0.2)
    assert np.isnan(nll[:, 0]).all()
    assert (nll[:, 1:] >= 0).all()
    # P ~ the mass within 0.5 / 1e-7 scales of the centre (residuals of 1e-6 are 1e-5 of the half-bin)
    tail = stats.gennorm(0.2).sf(0.5 / 1e-7)
    np.testing.assert_allclose(nll[:, 1], -np.log1p(-tail), rtol=1e-3)
    np.testing.assert_allclose(nll[:, 2:], -np.log1p(-2 * tail), rtol=1e-3)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="no discretized likelihood for 'cauchy'"):
        log_bin_probability("cauchy", np.zeros(1), np.ones(1))
    with pytest.raises(ValueError, match="lower < upper"):
        log_bin_probability("gaussian", np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match="needs the shape p"):
        log_bin_probability("gennorm", np.zeros(1), np.ones(1))
