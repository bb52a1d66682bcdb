"""calibrated_nll: the NLL of residuals at the maximum-likelihood scale (and gennorm shape)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from lpae.criteria import CalibratedNLL, calibrated_nll


def residuals(seed: int = 0, p: float = 1.3, n: int = 20_000) -> np.ndarray:
    return scipy.stats.gennorm(p, scale=0.7).rvs(size=n, random_state=seed)


def test_gaussian_and_laplace_closed_forms() -> None:
    r = residuals()
    gaussian = calibrated_nll(r, "gaussian")
    sigma2 = float((r**2).mean())
    assert gaussian.scale == pytest.approx(math.sqrt(sigma2), rel=1e-12)
    assert gaussian.nll == pytest.approx(0.5 * math.log(2 * math.pi * sigma2) + 0.5, rel=1e-12)
    assert gaussian.bits_per_dim == pytest.approx(gaussian.nll / math.log(2))
    laplace = calibrated_nll(torch.from_numpy(r).float(), "laplace")
    b = float(np.abs(r).mean())
    assert laplace.scale == pytest.approx(b, rel=1e-6)
    assert laplace.nll == pytest.approx(math.log(2 * b) + 1, rel=1e-6)
    assert laplace.shape is None and laplace.n_elements == r.size


@pytest.mark.parametrize("p_true", [0.6, 1.3, 2.0, 4.0])
def test_gennorm_fit_agrees_with_scipy(p_true: float) -> None:
    r = residuals(1, p_true, 5_000)
    found = calibrated_nll(r)  # gennorm, shape fitted
    beta, _, scale = scipy.stats.gennorm.fit(r, floc=0)
    reference_nll = -float(scipy.stats.gennorm(beta, scale=scale).logpdf(r).mean())
    assert found.shape == pytest.approx(beta, rel=2e-3)
    assert found.scale == pytest.approx(scale, rel=2e-3)
    assert found.nll <= reference_nll + 1e-9  # the exact profile is at least as good as scipy's search
    assert found.nll == pytest.approx(
        -float(scipy.stats.gennorm(found.shape, scale=found.scale).logpdf(r).mean())
    )
    assert found.family.startswith("gennorm:p=")


def test_gennorm_at_a_fixed_shape_and_the_shape_ordering() -> None:
    r = residuals(2, 1.0)
    laplace = calibrated_nll(r, "laplace")
    one = calibrated_nll(r, "gennorm:p=1")
    assert one.nll == pytest.approx(laplace.nll, rel=1e-12) and one.shape == 1.0
    assert one.family == "gennorm:p=1"
    fitted = calibrated_nll(r, "gennorm")
    assert fitted.nll <= min(one.nll, calibrated_nll(r, "gaussian").nll)


def test_student_t_and_barron_families() -> None:
    r = scipy.stats.t(3, scale=0.5).rvs(size=10_000, random_state=3)
    t = calibrated_nll(r, "student_t:df=3")
    _, _, scale = scipy.stats.t.fit(r, fdf=3, floc=0)
    assert t.scale == pytest.approx(scale, rel=1e-4)
    assert t.nll == pytest.approx(-float(scipy.stats.t(3, scale=t.scale).logpdf(r).mean()), rel=1e-10)
    barron_two = calibrated_nll(r, "barron_nll:alpha=2")
    assert barron_two.nll == pytest.approx(calibrated_nll(r, "gaussian").nll, rel=1e-9)


def test_json_form() -> None:
    record = calibrated_nll(residuals(4), "gaussian").to_json()
    assert set(record) == {"family", "scale", "shape", "nll", "n_elements", "bits_per_dim"}
    assert isinstance(calibrated_nll(residuals(4)), CalibratedNLL)


@pytest.mark.parametrize(
    ("residual", "family", "message"),
    [
        (np.zeros(10), "gaussian", "every residual is 0"),
        (np.array([1.0, np.nan]), "gaussian", "nan or inf"),
        (np.array([]), "gaussian", "no residuals"),
        (np.ones(10), "gennorm:p=-1", "out of range"),
        (np.ones(10), "student_t", "missing argument df"),
        (np.ones(10), "cauchy", "unknown calibrated_nll family 'cauchy'"),
    ],
)
def test_bad_input(residual: np.ndarray, family: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calibrated_nll(residual, family)
