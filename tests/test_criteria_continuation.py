"""Continuation (lpae.criteria.continuation): convex start, exact target, schedule over epochs."""

from __future__ import annotations

import math

import pytest
import torch

from lpae import criteria
from lpae.criteria.barron import barron_rho
from lpae.criteria.continuation import DF_CONVEX, geometric, linear, progress

torch.manual_seed(0)
X = torch.randn(16, 5, dtype=torch.float64)
OUT = X + torch.randn(16, 5, dtype=torch.float64)


def value(spec: str, t: float) -> torch.Tensor:
    criterion = criteria.build(spec, feature_shape=(5,)).double()
    criterion.anneal(t)
    return criterion(X, OUT)


@pytest.mark.parametrize(
    ("spec", "convex_start"),
    [
        ("lp:0.5", "lp:2,eps=0.001"),
        ("lp:1", "lp:2,eps=0.001"),
        ("lp:0.3,eps=0", "lp:2"),
        ("lpnorm:0.5", "lpnorm:2"),
        ("gennorm:p=0.5,scale=1", "gennorm:p=2,scale=1"),
        ("laplace:scale=1", "gennorm:p=2,scale=1"),  # gennorm's p = 1, continued as lp:1 is
        ("barron:alpha=0", "barron:alpha=2"),
        ("barron:alpha=-2,c=0.5", "barron:alpha=2,c=0.5"),
        ("barron_nll:alpha=0.5,scale=1", "barron_nll:alpha=2,scale=1"),
    ],
)
def test_the_schedule_starts_convex_and_ends_at_the_target(spec: str, convex_start: str) -> None:
    assert criteria.build(spec, feature_shape=(5,)).continued
    torch.testing.assert_close(value(spec, 0.0), value(convex_start, 1.0))
    torch.testing.assert_close(value(spec, 1.0), criteria.build(spec, feature_shape=(5,)).double()(X, OUT))
    midway = value(spec, 0.5)
    assert not torch.allclose(midway, value(spec, 0.0)) and not torch.allclose(midway, value(spec, 1.0))


def test_cauchy_starts_from_barrons_quadratic() -> None:
    c = 0.7
    torch.testing.assert_close(value(f"cauchy:c={c}", 0.0), (0.5 * ((OUT - X) / c) ** 2).sum(dim=1))
    torch.testing.assert_close(value(f"cauchy:c={c}", 0.4), barron_rho((OUT - X) / c, 1.2).sum(dim=1))


def test_student_t_df_moves_geometrically_from_nearly_gaussian() -> None:
    start = value("student_t:df=2.5,scale=1", 0.0)
    torch.testing.assert_close(start, value(f"student_t:df={DF_CONVEX:g},scale=1", 1.0))
    half = geometric(DF_CONVEX, 2.5, 0.5)
    torch.testing.assert_close(
        value("student_t:df=2.5,scale=1", 0.5), value(f"student_t:df={half!r},scale=1", 1.0)
    )


@pytest.mark.parametrize(
    "spec",
    ["lp:2", "lp:1.5", "huber", "l1l2", "charbonnier", "logcosh", "gaussian", "gennorm",
     "gennorm:p=1.5", "barron:alpha=1.5", "student_t", "student_t:df=200", "cbernoulli", "lpnorm:2"],
)  # fmt: skip
def test_convex_and_freely_learned_criteria_have_no_schedule(spec: str) -> None:
    criterion = criteria.build(spec, feature_shape=(5,))
    assert not criterion.continued
    if criterion.support == "real":
        torch.testing.assert_close(value(spec, 0.0), value(spec, 1.0))


def test_a_learned_barron_alpha_trains_through_the_blend() -> None:
    criterion = criteria.build("barron:alpha=learned").double()
    criterion.anneal(0.25)
    criterion(X, OUT).sum().backward()
    grad = criterion.alpha.raw.grad
    assert grad is not None and float(grad) != 0.0


def test_progress_over_epochs() -> None:
    assert [progress(e, 10, 0.5) for e in range(1, 11)] == [0.0, 0.2, 0.4, 0.6, 0.8, 1, 1, 1, 1, 1]
    assert progress(1, 1, 0.7) == 1.0  # one epoch: no room for a schedule, train on the target
    assert progress(1, 2, 0.7) == 0.0 and progress(2, 2, 0.7) == 1.0
    assert all(progress(e, 30, 0.0) == 1.0 for e in range(1, 31))
    assert progress(22, 30, 0.7) == 1.0 and progress(21, 30, 0.7) < 1.0


def test_interpolation_helpers_and_bad_progress() -> None:
    assert linear(2.0, 0.5, 0.0) == 2.0 and linear(2.0, 0.5, 1.0) == 0.5 and linear(2.0, 0.5, 0.5) == 1.25
    assert geometric(100.0, 1.0, 0.5) == pytest.approx(10.0) and geometric(100.0, 2.5, 1.0) == 2.5
    criterion = criteria.build("lp:0.5")
    for bad in (-0.1, 1.5, math.nan, "half"):
        with pytest.raises(ValueError, match=r"progress must be a number in \[0, 1\]"):
            criterion.anneal(bad)  # type: ignore[arg-type]
