"""Likelihood constants exact at extreme parameters, against independent high-precision references.

- Continuous Bernoulli: log C, the mean and the NLL at logits -100 .. 100 and beyond, in float32
  and float64, against mpmath evaluating the lambda-space definitions
  C = 2 atanh(1 - 2 lam) / (1 - 2 lam) and mean = lam / (2 lam - 1) + 1 / (2 atanh(1 - 2 lam))
  with enough digits that 1 - 2 lam keeps its precision (mpmath is installed with torch, through
  sympy). torch.distributions.ContinuousBernoulli freezes both beyond |logit| ~ 16.
- Student-t: the NLL in float32 at df from 1 to 1e7 against scipy.stats.t.logpdf in float64, the
  normalising constant against mpmath, and float64 gradients (df learned) by gradcheck on both
  sides of the switch to the asymptotic expansion.

Tolerances are a few units in the last place of the dtype (eps = torch.finfo(dtype).eps): the
reference is evaluated at the logit or residual exactly as the dtype represents it.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import scipy.stats
import torch
from torch.distributions import ContinuousBernoulli
from torch.func import functional_call

from lpae import criteria
from lpae.criteria.student_t import STUDENT_T_SERIES_FROM, student_t_log_normalizer
from lpae.criteria.unit import CB_TAYLOR_LOGIT, cb_log_normalizer, cb_mean

DTYPES = [torch.float32, torch.float64]
ULPS = 4  # allowed error in units of eps, relative to the size of the terms


def logit_grid() -> np.ndarray:
    """Logits -100 .. 100 (steps of 0.25, and log-spaced from 1e-8), the switch points, and beyond."""
    magnitudes = np.concatenate(
        [
            np.linspace(0, 100, 401),
            np.geomspace(1e-8, 100, 81),
            [CB_TAYLOR_LOGIT * (1 - 1e-6), CB_TAYLOR_LOGIT, CB_TAYLOR_LOGIT * (1 + 1e-6)],
            [0.4999, 0.5, 0.5001, 0.9999, 1.0, 1.0001, 15.9, 16.0, 38.6],
            [300.0, 1e3, 1e4],
        ]
    )
    return np.unique(np.concatenate([-magnitudes, magnitudes]))


def cb_reference(logit: float) -> tuple[float, float, float, float]:
    """(log C, mean, log lam, log(1 - lam)) at ``logit`` by mpmath, from the definitions in lam."""
    if logit == 0:
        return float(mpmath.log(2)), 0.5, float(mpmath.log(0.5)), float(mpmath.log(0.5))
    with mpmath.workdps(40 + int(abs(logit) / 2.3)):  # lam ~ exp(-|l|): keep 1 - 2 lam exact
        lam = 1 / (1 + mpmath.exp(-mpmath.mpf(logit)))
        c = 2 * mpmath.atanh(1 - 2 * lam) / (1 - 2 * lam)
        mean = lam / (2 * lam - 1) + 1 / (2 * mpmath.atanh(1 - 2 * lam))
        return float(mpmath.log(c)), float(mean), float(mpmath.log(lam)), float(mpmath.log(1 - lam))


@pytest.fixture(scope="module")
def cb_references() -> dict[torch.dtype, tuple[np.ndarray, np.ndarray]]:
    """Logits as each dtype represents them, and the mpmath rows (n, 4) of cb_reference."""
    found = {}
    for dtype in DTYPES:
        logits = torch.tensor(logit_grid(), dtype=dtype).to(torch.float64).numpy()
        found[dtype] = (logits, np.array([cb_reference(float(v)) for v in logits]))
    return found


@pytest.mark.parametrize("dtype", DTYPES)
def test_cbernoulli_log_normalizer_and_mean_match_mpmath(dtype: torch.dtype, cb_references: dict) -> None:
    logits, reference = cb_references[dtype]
    eps = torch.finfo(dtype).eps
    out = torch.tensor(logits, dtype=dtype)
    log_c = cb_log_normalizer(out)
    mean = criteria.build("cbernoulli").reconstruct(out)
    assert log_c.dtype == dtype and mean.dtype == dtype
    np.testing.assert_allclose(log_c.double().numpy(), reference[:, 0], rtol=ULPS * eps, atol=0)
    np.testing.assert_allclose(mean.double().numpy(), reference[:, 1], rtol=ULPS * eps, atol=0)
    assert float(cb_log_normalizer(torch.tensor(1e30, dtype=dtype))) == pytest.approx(np.log(1e30), rel=eps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cbernoulli_nll_matches_mpmath(dtype: torch.dtype, cb_references: dict) -> None:
    logits, reference = cb_references[dtype]
    eps = torch.finfo(dtype).eps
    x = np.array([0.0, 0.25, 0.5, 0.9, 1.0], dtype=np.float64)  # exact in both dtypes
    log_c, log_lam, log_one_minus = reference[:, 0, None], reference[:, 2, None], reference[:, 3, None]
    expected = -(log_c + x * log_lam + (1 - x) * log_one_minus)  # (n, 5) nats per element
    crit = criteria.build("cbernoulli").to(dtype)
    x_rows = torch.tensor(np.broadcast_to(x, expected.shape).copy(), dtype=dtype).reshape(-1, 1)
    out = torch.tensor(np.broadcast_to(logits[:, None], expected.shape).copy(), dtype=dtype).reshape(-1, 1)
    with torch.no_grad():
        found = crit(x_rows, out).double().numpy().reshape(expected.shape)
    size = np.abs(log_c) + np.abs(x * log_lam) + np.abs((1 - x) * log_one_minus)  # the terms summed
    assert np.all(np.abs(found - expected) <= ULPS * eps * size)


def test_torch_continuous_bernoulli_is_frozen_where_ours_is_exact(cb_references: dict) -> None:
    """The reason for the logit-space form: torch's log-normaliser stops moving beyond |l| ~ 16."""
    logits = torch.tensor([20.0, 38.6, 100.0])
    frozen = ContinuousBernoulli(logits=logits, validate_args=False)._cont_bern_log_norm()
    assert float(frozen.max() - frozen.min()) < 1e-6
    exact = cb_log_normalizer(logits)
    np.testing.assert_allclose(exact.numpy(), np.log(logits.numpy()), rtol=1e-6)  # log C ~ log l


def test_cbernoulli_gradients_pass_gradcheck_across_the_switch() -> None:
    logits = torch.tensor(
        [-60.0, -3.0, -CB_TAYLOR_LOGIT * 1.01, -0.05, 0.0, 0.05, CB_TAYLOR_LOGIT * 1.01, 0.7, 3.0, 60.0],
        dtype=torch.float64,
        requires_grad=True,
    )
    assert torch.autograd.gradcheck(cb_log_normalizer, (logits,), atol=1e-8, rtol=1e-6)
    assert torch.autograd.gradcheck(cb_mean, (logits,), atol=1e-8, rtol=1e-6)


# --- Student-t ----------------------------------------------------------------------------------

T_DFS = [1.0, 2.5, 30.0, 1e3, 1e5, 1e6, 1e7]


@pytest.mark.parametrize("df", T_DFS)
def test_student_t_nll_in_float32_matches_scipy_in_float64(df: float) -> None:
    rng = np.random.default_rng(0)
    residual = torch.from_numpy(rng.standard_normal((64, 8)) * 3).float()  # (B, D)
    scale = 0.7
    crit = criteria.build(f"student_t:df={df:g},scale={scale}")
    with torch.no_grad():
        found = crit(torch.zeros_like(residual), residual)  # (B,) float32
    assert found.dtype == torch.float32
    elements = -scipy.stats.t(df, scale=scale).logpdf(residual.double().numpy())  # float64
    expected = elements.sum(axis=1)
    size = np.abs(elements).sum(axis=1) + residual.shape[1] * np.log(2 * np.pi)  # the terms summed
    eps = torch.finfo(torch.float32).eps
    assert np.all(np.abs(found.double().numpy() - expected) <= ULPS * eps * size)


@pytest.mark.parametrize("dtype", DTYPES)
def test_student_t_log_normalizer_matches_mpmath(dtype: torch.dtype) -> None:
    dfs = [0.1, 1.0, 2.5, 2 * STUDENT_T_SERIES_FROM * (1 - 1e-6), 2 * STUDENT_T_SERIES_FROM, 30.0]
    dfs += [1e3, 1e5, 1e6, 1e7, 1e12]
    eps = torch.finfo(dtype).eps
    for df in dfs:
        value = float(torch.tensor(df, dtype=dtype))  # the df as the dtype represents it
        nu = mpmath.mpf(value)
        with mpmath.workdps(40):
            expected = float(
                mpmath.loggamma(nu / 2) - mpmath.loggamma((nu + 1) / 2) + mpmath.log(nu * mpmath.pi) / 2
            )
        found = float(student_t_log_normalizer(torch.tensor(value, dtype=dtype)))
        # the lgamma difference below the switch carries the rounding of lgamma(nu / 2) itself
        size = max(abs(expected), abs(float(mpmath.loggamma(nu / 2))), 1.0)
        assert abs(found - expected) <= ULPS * eps * size, (df, found, expected)
        # a float df is computed in double precision
        in_double = float(student_t_log_normalizer(value))
        assert abs(in_double - expected) <= ULPS * torch.finfo(torch.float64).eps * size


def test_student_t_gradients_pass_gradcheck_at_small_and_large_df() -> None:
    """float64 gradients in the data, the decoder output and a learned df, on both sides of the
    switch to the expansion (df = 0.1 + softplus(raw))."""
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((4, 3))).requires_grad_(True)
    out = (x.detach() + torch.from_numpy(rng.standard_normal((4, 3)))).requires_grad_(True)
    crit = criteria.build("student_t:df=learned,scale=0.5").double()
    switch = 2 * STUDENT_T_SERIES_FROM
    for df in [0.5, 3.0, switch * 0.999, switch * 1.001, 1e3, 1e7]:
        softplus = df - 0.1
        inverse = softplus + np.log(-np.expm1(-softplus))  # softplus(inverse) = df - 0.1
        raw = torch.tensor(inverse, dtype=torch.float64, requires_grad=True)

        def nll(x: torch.Tensor, out: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
            result: torch.Tensor = functional_call(crit, {"df.raw": raw}, (x, out))
            return result

        assert torch.autograd.gradcheck(nll, (x, out, raw), atol=1e-8, rtol=1e-6), df
    values = torch.tensor([0.5, 3.0, switch * 0.999, switch * 1.001, 1e3, 1e7], dtype=torch.float64)

    def constant(df: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(student_t_log_normalizer(df))

    assert torch.autograd.gradcheck(constant, (values.requires_grad_(True),), atol=1e-10)
