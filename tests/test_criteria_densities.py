"""Likelihood criteria against independent references.

NLLs equal scipy.stats (norm, laplace, gennorm, t, beta) and closed forms (continuous Bernoulli,
Barron, Bernoulli cross-entropy); every density integrates to 1 by quadrature (and the improper
Bernoulli does not); the plain losses are the likelihoods at a fixed scale up to an affine map.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from scipy import integrate
from scipy.special import expit

from lpae import criteria
from lpae.criteria.scale import SCALE_RATE

N_SAMPLES, N_FEATURES = 5, 7


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N_SAMPLES, N_FEATURES)), rng.normal(size=(N_SAMPLES, N_FEATURES))


def nll(spec: str, x: np.ndarray, out: np.ndarray, **context: object) -> np.ndarray:
    crit = criteria.build(spec, **context).double()
    with torch.no_grad():
        return crit(torch.from_numpy(x), torch.from_numpy(out)).numpy()


def soft_floor(raw: np.ndarray) -> np.ndarray:
    return -6 + np.logaddexp(0, raw + 6)


# --- NLL = -scipy.stats logpdf summed over features ---------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reference"),
    [
        ("gaussian:scale=0.7", scipy.stats.norm(scale=0.7)),
        ("laplace:scale=0.7", scipy.stats.laplace(scale=0.7)),
        ("gennorm:p=0.5,scale=0.7", scipy.stats.gennorm(0.5, scale=0.7)),
        ("gennorm:p=1,scale=0.7", scipy.stats.gennorm(1, scale=0.7)),
        ("gennorm:p=1.5,scale=0.7", scipy.stats.gennorm(1.5, scale=0.7)),
        ("gennorm:p=2,scale=0.7", scipy.stats.gennorm(2, scale=0.7)),
        ("gennorm:p=3.5,scale=0.7", scipy.stats.gennorm(3.5, scale=0.7)),
        ("student_t:df=0.5,scale=0.7", scipy.stats.t(0.5, scale=0.7)),
        ("student_t:df=1,scale=0.7", scipy.stats.t(1, scale=0.7)),
        ("student_t:df=3,scale=0.7", scipy.stats.t(3, scale=0.7)),
        ("student_t:df=30,scale=0.7", scipy.stats.t(30, scale=0.7)),
    ],
)
def test_fixed_scale_nll_equals_scipy(spec: str, reference: scipy.stats.rv_continuous) -> None:
    x, mu = data()
    expected = -reference.logpdf(x - mu).sum(axis=1)
    np.testing.assert_allclose(nll(spec, x, mu), expected, rtol=1e-10)


@pytest.mark.parametrize(
    ("family", "reference"),
    [
        ("gaussian", lambda s: scipy.stats.norm(scale=s)),
        ("laplace", lambda s: scipy.stats.laplace(scale=s)),
        ("gennorm:p=0.8", lambda s: scipy.stats.gennorm(0.8, scale=s)),
        ("student_t:df=2.5", lambda s: scipy.stats.t(2.5, scale=s)),
    ],
)
def test_predicted_and_per_feature_scales_equal_scipy(family: str, reference: object) -> None:
    x, mu = data(1)
    raw = np.random.default_rng(2).normal(size=x.shape)
    sep = "," if ":" in family else ":"
    scale = np.exp(soft_floor(raw))
    expected = -reference(scale).logpdf(x - mu).sum(axis=1)  # type: ignore[operator]
    out = np.concatenate([mu, raw], axis=1)  # (B, 2 D): locations, then raw log-scales
    np.testing.assert_allclose(nll(family + sep + "scale=predicted", x, out), expected, rtol=1e-10)

    crit = criteria.build(family + sep + "scale=learned_per_feature", feature_shape=(N_FEATURES,)).double()
    with torch.no_grad():
        crit.scale.raw.copy_(torch.from_numpy(raw[0]) / SCALE_RATE)  # log s = soft_floor(rate theta)
        value = crit(torch.from_numpy(x), torch.from_numpy(mu)).numpy()
    expected = -reference(np.exp(soft_floor(raw[0]))).logpdf(x - mu).sum(axis=1)  # type: ignore[operator]
    np.testing.assert_allclose(value, expected, rtol=1e-10)


@pytest.mark.parametrize("concentration", ["5", "predicted"])
def test_beta_nll_equals_scipy(concentration: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0.02, 0.98, size=(N_SAMPLES, N_FEATURES))
    logits = rng.normal(size=x.shape)
    raw = rng.normal(size=x.shape)
    k = 5.0 if concentration == "5" else np.exp(soft_floor(raw))
    m = expit(logits)
    expected = -scipy.stats.beta(m * k, (1 - m) * k).logpdf(x).sum(axis=1)
    out = logits if concentration == "5" else np.concatenate([logits, raw], axis=1)
    np.testing.assert_allclose(nll(f"beta:concentration={concentration}", x, out), expected, rtol=1e-9)


def continuous_bernoulli_logpdf(x: np.ndarray, lam: np.ndarray) -> np.ndarray:
    log_c = np.log(2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam))
    return log_c + x * np.log(lam) + (1 - x) * np.log1p(-lam)


def test_continuous_bernoulli_nll_and_mean_equal_closed_forms() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, size=(N_SAMPLES, N_FEATURES))
    logits = rng.normal(scale=2, size=x.shape)
    lam = expit(logits)
    expected = -continuous_bernoulli_logpdf(x, lam).sum(axis=1)
    np.testing.assert_allclose(nll("cbernoulli", x, logits), expected, rtol=1e-9)
    mean = criteria.build("cbernoulli").reconstruct(torch.from_numpy(logits)).numpy()
    np.testing.assert_allclose(mean, lam / (2 * lam - 1) + 1 / (2 * np.arctanh(1 - 2 * lam)), rtol=1e-9)
    assert np.abs(mean - lam).max() > 0.01  # the mean is not lambda


def test_bernoulli_is_binary_cross_entropy() -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, size=(N_SAMPLES, N_FEATURES))
    logits = rng.normal(size=x.shape)
    lam = expit(logits)
    expected = -(x * np.log(lam) + (1 - x) * np.log1p(-lam)).sum(axis=1)
    np.testing.assert_allclose(nll("bernoulli", x, logits), expected, rtol=1e-10)
    entry, _ = criteria.CRITERIA.resolve("bernoulli")
    assert "IMPROPER" in entry.summary and criteria.describe("bernoulli").improper


# --- densities integrate to 1 -------------------------------------------------------------------


def density(spec: str, location: float) -> object:
    crit = criteria.build(spec).double()
    out = torch.tensor([[location]], dtype=torch.float64)

    def pdf(value: float) -> float:
        with torch.no_grad():
            return math.exp(-float(crit(torch.tensor([[value]], dtype=torch.float64), out)))

    return pdf


@pytest.mark.parametrize(
    "spec",
    [
        "gaussian:scale=0.7",
        "laplace:scale=0.7",
        "gennorm:p=0.5,scale=0.7",
        "gennorm:p=1.5,scale=0.7",
        "gennorm:p=4,scale=0.7",
        "student_t:df=0.7,scale=0.7",
        "student_t:df=3,scale=0.7",
        "barron_nll:alpha=0,scale=0.7",
        "barron_nll:alpha=0.5,scale=0.7",
        "barron_nll:alpha=1.3,scale=0.7",
        "barron_nll:alpha=2,scale=0.7",
        "barron_nll:alpha=3,scale=0.7",
        "barron_nll:alpha=10,scale=0.7",
    ],
)
def test_real_line_densities_integrate_to_one(spec: str) -> None:
    pdf = density(spec, 0.3)
    total = sum(
        integrate.quad(pdf, a, b, epsabs=1e-11, epsrel=1e-10, limit=400)[0]  # type: ignore[arg-type]
        for a, b in [(-math.inf, 0.3), (0.3, math.inf)]
    )
    assert total == pytest.approx(1.0, abs=1e-7)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # Beta(a < 1): poles at 0, 1
@pytest.mark.parametrize("spec", ["cbernoulli", "beta:concentration=3", "beta:concentration=0.7"])
@pytest.mark.parametrize("logit", [-2.0, 0.0, 1e-4, 1.5])
def test_unit_interval_densities_integrate_to_one(spec: str, logit: float) -> None:
    pdf = density(spec, logit)
    total = integrate.quad(pdf, 0, 1, epsabs=1e-11, epsrel=1e-10, limit=400)[0]  # type: ignore[arg-type]
    assert total == pytest.approx(1.0, abs=1e-7)


def test_bernoulli_cross_entropy_is_not_a_density_on_the_unit_interval() -> None:
    pdf = density("bernoulli", 1.0)
    total = integrate.quad(pdf, 0, 1)[0]  # type: ignore[arg-type]
    assert total < 0.9


# --- plain losses are likelihoods at a fixed scale, up to an affine map ------------------------


def test_lp2_is_gaussian_and_lp1_is_laplace_up_to_an_affine_map() -> None:
    x, mu = data(6)
    sigma, b = 0.6, 1.7
    gaussian = nll(f"gaussian:scale={sigma}", x, mu)
    squared = nll("lp:2", x, mu)
    np.testing.assert_allclose(
        gaussian, squared / (2 * sigma**2) + N_FEATURES * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    )
    laplace = nll(f"laplace:scale={b}", x, mu)
    absolute = nll("lp:p=1,eps=0", x, mu)
    np.testing.assert_allclose(laplace, absolute / b + N_FEATURES * math.log(2 * b))


@pytest.mark.parametrize("p", [0.5, 1.5, 3.0])
def test_lp_is_gennorm_up_to_an_affine_map(p: float) -> None:
    x, mu = data(7)
    alpha = 0.8
    energy = nll(f"lp:p={p},eps=0", x, mu)
    constant = math.log(2 * alpha) + math.lgamma(1 / p) - math.log(p)
    np.testing.assert_allclose(
        nll(f"gennorm:p={p},scale={alpha}", x, mu), energy / alpha**p + N_FEATURES * constant
    )


def test_gennorm_two_is_gaussian_and_one_is_laplace() -> None:
    x, mu = data(8)
    np.testing.assert_allclose(
        nll("gennorm:p=2,scale=1.4", x, mu), nll(f"gaussian:scale={1.4 / math.sqrt(2)}", x, mu)
    )
    np.testing.assert_allclose(nll("gennorm:p=1,scale=0.9", x, mu), nll("laplace:scale=0.9", x, mu))
    residual = torch.from_numpy(mu - x)
    two = criteria.build("gennorm:p=2,scale=calibrated").calibrate(residual)
    gaussian = criteria.build("gaussian:scale=calibrated").calibrate(residual)
    assert float(two) == pytest.approx(math.sqrt(2) * float(gaussian), rel=1e-12)
    one = criteria.build("gennorm:p=1,scale=calibrated").calibrate(residual)
    assert float(one) == pytest.approx(float(criteria.build("laplace:scale=calibrated").calibrate(residual)))


# --- calibrated (maximum-likelihood) scales -----------------------------------------------------


def ml_scale_by_scipy(reference: object, residual: np.ndarray) -> float:
    """argmax over s of sum log pdf(r / s) / s, by bounded 1-D search on log s."""
    from scipy.optimize import minimize_scalar

    def negative(log_s: float) -> float:
        return -float(reference(math.exp(log_s)).logpdf(residual).sum())  # type: ignore[operator]

    found = minimize_scalar(negative, bounds=(-5, 5), method="bounded", options={"xatol": 1e-11})
    return math.exp(float(found.x))


@pytest.mark.parametrize(
    ("spec", "reference"),
    [
        ("gaussian", lambda s: scipy.stats.norm(scale=s)),
        ("laplace", lambda s: scipy.stats.laplace(scale=s)),
        ("gennorm:p=0.7", lambda s: scipy.stats.gennorm(0.7, scale=s)),
        ("gennorm:p=2.5", lambda s: scipy.stats.gennorm(2.5, scale=s)),
        ("student_t:df=1", lambda s: scipy.stats.t(1, scale=s)),
        ("student_t:df=4", lambda s: scipy.stats.t(4, scale=s)),
        ("barron_nll:alpha=0", None),
        ("barron_nll:alpha=1", None),
        ("barron_nll:alpha=3", None),
    ],
)
def test_calibrated_scale_is_the_maximum_likelihood_scale(spec: str, reference: object) -> None:
    residual = np.random.default_rng(9).standard_t(3, size=(40, 25))
    sep = "," if ":" in spec else ":"
    crit = criteria.build(spec + sep + "scale=calibrated").double()
    found = float(crit.calibrate(torch.from_numpy(residual)))
    if reference is None:  # Barron: maximise the criterion's own NLL over a fixed scale
        alpha = float(spec.split("=")[1])

        class Barron:
            def __init__(self, s: float) -> None:
                self.s = s

            def logpdf(self, r: np.ndarray) -> np.ndarray:
                return -nll(
                    f"barron_nll:alpha={alpha},scale={self.s}", np.zeros((1, r.size)), r.reshape(1, -1)
                )

        reference = Barron
    assert found == pytest.approx(ml_scale_by_scipy(reference, residual), rel=1e-6)


def test_closed_form_scales() -> None:
    residual = np.random.default_rng(10).normal(size=(30, 11))
    r = torch.from_numpy(residual)
    assert float(criteria.build("gaussian:scale=calibrated").calibrate(r)) == pytest.approx(
        math.sqrt((residual**2).mean()), rel=1e-13
    )
    assert float(criteria.build("laplace:scale=calibrated").calibrate(r)) == pytest.approx(
        np.abs(residual).mean(), rel=1e-13
    )
    p = 1.3
    assert float(criteria.build(f"gennorm:p={p},scale=calibrated").calibrate(r)) == pytest.approx(
        (p * (np.abs(residual) ** p).mean()) ** (1 / p), rel=1e-13
    )


def test_student_t_calibrated_scale_agrees_with_scipy_fit() -> None:
    residual = scipy.stats.t(3, scale=0.4).rvs(size=4000, random_state=11)
    _, _, scale = scipy.stats.t.fit(residual, fdf=3, floc=0)
    found = criteria.build("student_t:df=3,scale=calibrated").double().calibrate(torch.from_numpy(residual))
    assert float(found) == pytest.approx(scale, rel=1e-4)


def test_scale_without_a_root_falls_to_the_floor() -> None:
    residual = torch.zeros(10, 10, dtype=torch.float64)
    residual[0, 0] = 1.0  # 1 % non-zero residuals: (df + 1) * 0.01 < 1, the likelihood has no maximum
    crit = criteria.build("student_t:df=3,scale=calibrated").double()
    assert float(crit.calibrate(residual)) == 0.0
    value = crit(torch.zeros_like(residual), residual)
    assert torch.isfinite(value).all()
