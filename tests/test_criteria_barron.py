"""Barron's loss: special cases equal their closed forms, limits are stable, log Z(alpha) is accurate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lpae import criteria
from lpae.criteria.barron import barron_rho
from lpae.criteria.barron_partition import log_partition, partition_by_quadrature

X = torch.linspace(-6, 6, 121, dtype=torch.float64).reshape(1, -1)
C = 0.7
U = X / C

CLOSED_FORMS = {
    "2": 0.5 * U**2,
    "1": torch.sqrt(U**2 + 1) - 1,
    "0": torch.log(0.5 * U**2 + 1),
    "-2": 2 * U**2 / (U**2 + 4),  # Geman-McClure
    "-inf": 1 - torch.exp(-0.5 * U**2),  # Welsch
    "inf": torch.exp(0.5 * U**2) - 1,
}


@pytest.mark.parametrize("alpha", list(CLOSED_FORMS))
def test_special_cases_equal_their_closed_forms(alpha: str) -> None:
    crit = criteria.build(f"barron:alpha={alpha},c={C}")
    value = crit(torch.zeros_like(X), X)
    torch.testing.assert_close(value, CLOSED_FORMS[alpha].sum(dim=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("near", "limit"), [(2 + 1e-7, "2"), (2 - 1e-7, "2"), (1e-9, "0"), (-1e-9, "0"), (-1e8, "-inf")]
)
def test_formula_is_stable_next_to_the_limits(near: float, limit: str) -> None:
    value = barron_rho(U, near)
    assert torch.isfinite(value).all()
    torch.testing.assert_close(value, CLOSED_FORMS[limit], rtol=2e-5, atol=1e-7)


def test_learned_alpha_near_the_limits_is_stable_in_float32() -> None:
    u = U.float()
    for alpha in (1e-7, 2 - 1e-6, 2 + 1e-6, 3.999):
        a = torch.tensor(alpha, requires_grad=True)
        value = barron_rho(u, a).sum()
        value.backward()
        assert torch.isfinite(value) and a.grad is not None and torch.isfinite(a.grad)


def test_cauchy_and_charbonnier_are_members_of_the_family() -> None:
    x, out = torch.randn(3, 9, dtype=torch.float64), torch.randn(3, 9, dtype=torch.float64)
    torch.testing.assert_close(
        criteria.build("cauchy:c=0.4")(x, out), criteria.build("barron:alpha=0,c=0.4")(x, out)
    )
    torch.testing.assert_close(
        criteria.build("charbonnier:eps=0.3")(x, out), criteria.build("lp:p=1,eps=0.3")(x, out)
    )
    # Barron alpha = 1 with scale c is Charbonnier with eps = c, divided by c
    torch.testing.assert_close(
        criteria.build("barron:alpha=1,c=0.3")(x, out), criteria.build("charbonnier:eps=0.3")(x, out) / 0.3
    )


@settings(max_examples=40, deadline=None)
@given(low=st.floats(-10, 10), gap=st.floats(0.01, 5))
def test_rho_grows_with_alpha(low: float, gap: float) -> None:
    assert bool((barron_rho(U, low + gap) >= barron_rho(U, low) - 1e-12).all())


REFERENCE_Z = {
    0.0: 4.442882938,
    0.5: 3.638993131,
    1.0: 3.272306973,
    1.5: 2.965924889,
    2.0: 2.506628275,
    3.0: 2.153202857,
    4.0: 2.101960916,
    8.0: 2.054500222,
}


@pytest.mark.parametrize(("alpha", "z"), list(REFERENCE_Z.items()))
def test_partition_matches_reference_values(alpha: float, z: float) -> None:
    assert math.exp(log_partition(alpha)) == pytest.approx(z, rel=2e-8, abs=0)  # 1e-6 is required
    tensor_value = log_partition(torch.tensor(alpha, dtype=torch.float64))
    assert float(tensor_value) == pytest.approx(log_partition(alpha), abs=1e-14)


def test_partition_closed_forms_at_zero_and_two() -> None:
    assert math.exp(log_partition(0.0)) == pytest.approx(math.pi * math.sqrt(2), rel=1e-12)
    assert math.exp(log_partition(2.0)) == pytest.approx(math.sqrt(2 * math.pi), rel=1e-12)


def test_interpolated_log_partition_is_accurate_everywhere() -> None:
    rng = np.random.default_rng(0)
    alphas = np.concatenate(
        [
            rng.uniform(0, 8, 40),
            rng.uniform(0, 0.3, 10),
            2 + rng.choice([-1, 1], 10) * 10 ** rng.uniform(-8, 0, 10),
        ]
    )
    errors = [abs(log_partition(float(a)) - math.log(partition_by_quadrature(float(a)))) for a in alphas]
    assert max(errors) < 2e-8
    assert log_partition(12.5) == pytest.approx(math.log(partition_by_quadrature(12.5)), abs=1e-12)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 1.7, 2.6, 3.8])
def test_log_partition_slope_matches_quadrature(alpha: float) -> None:
    a = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
    log_z = log_partition(a)
    assert isinstance(log_z, torch.Tensor)
    log_z.backward()
    h = 1e-5
    slope = (math.log(partition_by_quadrature(alpha + h)) - math.log(partition_by_quadrature(alpha - h))) / (
        2 * h
    )
    assert a.grad is not None and float(a.grad) == pytest.approx(slope, abs=2e-5)


def test_negative_alpha_has_no_density() -> None:
    with pytest.raises(ValueError, match=r"'barron_nll:alpha=-1': alpha=-1: '-1' is out of range"):
        criteria.build("barron_nll:alpha=-1")
    with pytest.raises(ValueError, match="alpha >= 0"):
        log_partition(-0.5)
