"""The L_p energy: values against NumPy, smoothing, gradients (gradcheck in float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lpae import criteria


@pytest.mark.parametrize("p", [0.3, 0.5, 1.0, 1.5, 2.0, 3.0])
def test_lp_equals_numpy_sum_of_powers(p: float) -> None:
    rng = np.random.default_rng(0)
    x, out = rng.normal(size=(2, 5, 7))
    crit = criteria.build(f"lp:{p},eps=0")
    value = crit(torch.from_numpy(x), torch.from_numpy(out)).numpy()
    assert value.shape == (5,)
    np.testing.assert_allclose(value, (np.abs(out - x) ** p).sum(axis=1), rtol=1e-12)


def test_smoothed_form_matches_reference_formula() -> None:
    rng = np.random.default_rng(1)
    residual = rng.normal(size=(4, 6))
    p, eps = 0.5, 0.01
    crit = criteria.build(f"lp:{p},eps={eps}")
    value = crit(torch.zeros(4, 6, dtype=torch.float64), torch.from_numpy(residual)).numpy()
    expected = ((residual**2 + eps**2) ** (p / 2) - eps**p).sum(axis=1)
    np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_auto_eps_smooths_only_for_p_at_most_one() -> None:
    assert criteria.build("lp:0.5").eps == 1e-3
    assert criteria.build("lp:1").eps == 1e-3
    assert criteria.build("lp:2").eps == 0.0


def test_aliases() -> None:
    assert str(criteria.build("l1")) == str(criteria.build("lp:1")) == "lp:p=1"
    assert str(criteria.build("l2")) == "lp:p=2"


@pytest.mark.parametrize("spec", ["lp:0.5", "lp:1", "lp:1.5", "lp:2", "lp:3"])
def test_gradient_finite_at_perfect_reconstruction(spec: str) -> None:
    x = torch.randn(3, 4)
    out = x.clone().requires_grad_(True)
    loss = criteria.build(spec)(x, out).sum()
    loss.backward()
    assert out.grad is not None and torch.isfinite(out.grad).all()
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("spec", ["lp:0.3,eps=0", "lp:0.5", "lp:1,eps=0", "lp:1.5", "lp:2", "lp:4"])
def test_gradcheck_float64(spec: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 5, dtype=torch.float64)
    # residuals kept away from 0, where |r|^p is not differentiable for p <= 1
    offset = (torch.rand(3, 5, dtype=torch.float64) + 0.2) * torch.sign(
        torch.randn(3, 5, dtype=torch.float64)
    )
    out = (x + offset).requires_grad_(True)
    crit = criteria.build(spec)
    assert torch.autograd.gradcheck(lambda o: crit(x, o), (out,))


@settings(max_examples=50, deadline=None)
@given(
    p=st.floats(min_value=0.1, max_value=4),
    scale=st.floats(min_value=0.1, max_value=10),
)
def test_exact_lp_is_symmetric_and_homogeneous(p: float, scale: float) -> None:
    residual = torch.linspace(-2, 2, 9, dtype=torch.float64).reshape(1, 9)
    zero = torch.zeros_like(residual)
    crit = criteria.build(f"lp:{p},eps=0")
    assert torch.allclose(crit(zero, residual), crit(zero, -residual))
    assert torch.allclose(crit(zero, scale * residual), scale**p * crit(zero, residual))
