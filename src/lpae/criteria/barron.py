"""Barron's general adaptive robust loss (Barron, CVPR 2019), a plain loss with shape alpha.

    rho(x, alpha, c) = |alpha - 2| / alpha * (((x/c)^2 / |alpha - 2| + 1)^(alpha/2) - 1)

Special cases (limits computed in closed form, not through the formula):
alpha = 2: 0.5 (x/c)^2; alpha = 1: sqrt((x/c)^2 + 1) - 1 (Charbonnier / pseudo-Huber);
alpha = 0: log(0.5 (x/c)^2 + 1) (Cauchy); alpha = -2: Geman-McClure; alpha -> -inf:
1 - exp(-0.5 (x/c)^2) (Welsch); alpha -> +inf: exp(0.5 (x/c)^2) - 1.

The general formula is evaluated as |alpha-2|/alpha * expm1(alpha/2 * log1p(v/|alpha-2|)),
v = (x/c)^2, which has no cancellation near alpha = 0; near alpha = 2 the factor |alpha - 2| is
kept above 1e-6 and |alpha| above 1e-10 (the errors there are O(1e-6) and O(1e-10)).

``barron:alpha=A,c=C``: A any number (inf and -inf included) or ``learned``: alpha =
4 sigmoid(theta) in (0, 4), starting at 1. A learned alpha in this plain loss drifts to the
lower bound, since rho decreases as alpha decreases for every x; to learn alpha, use the
normalised barron_nll, which pays log Z(alpha) for heavier tails.

For alpha < 1 or learned, training starts at alpha = 2 and moves to the target alpha (a learned
alpha through the blend alpha_t = 2 + t (alpha - 2)) over the first part of training, as Barron
anneals alpha (lpae.criteria.continuation). ``cauchy:c=C`` is the alpha = 0 member, with its own
closed form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lpae.criteria.base import CRITERIA, ElementwiseLoss
from lpae.criteria.continuation import CONVEX_P, linear
from lpae.criteria.scale import Shape
from lpae.spec import Number, Param

ALPHA_LEARNED_RANGE = (0.0, 4.0)
ALPHA_START = 1.0
NEAR_TWO = 1e-6
NEAR_ZERO = 1e-10


def barron_rho(u: Tensor, alpha: float | Tensor) -> Tensor:
    """rho(u, alpha, 1) element-wise, for u = x / c; ``alpha`` a number or a 0-dim tensor."""
    v = u.square()
    value = float(alpha.detach()) if isinstance(alpha, Tensor) else float(alpha)
    if value == 2:
        # A tensor alpha stays in the graph (a zero gradient, not None): continuation starts a
        # learned alpha at exactly 2, and Adam must count those steps as the fused trainer does.
        return 0.5 * v + 0.0 * alpha if isinstance(alpha, Tensor) else 0.5 * v
    if value == 0:
        return torch.log1p(0.5 * v)
    if value == -math.inf:
        return -torch.expm1(-0.5 * v)
    if value == math.inf:
        return torch.expm1(0.5 * v)
    if isinstance(alpha, Tensor):
        alpha = alpha.clamp_min(NEAR_ZERO) if value > 0 else alpha.clamp_max(-NEAR_ZERO)
        beta = (alpha - 2).abs().clamp_min(NEAR_TWO)
        return beta / alpha * torch.expm1(0.5 * alpha * torch.log1p(v / beta))
    value = math.copysign(max(abs(value), NEAR_ZERO), value)
    beta_number = max(abs(value - 2), NEAR_TWO)
    return beta_number / value * torch.expm1(0.5 * value * torch.log1p(v / beta_number))


class Barron(ElementwiseLoss):
    """sum over features of rho(x_hat - x, alpha, c)."""

    name = "barron"
    robust = True

    def __init__(
        self, alpha: float | str, c: float = 1.0, feature_shape: Sequence[int] | None = None, **_: Any
    ) -> None:
        super().__init__(alpha=alpha, c=c)
        self.c = float(c)
        self.alpha = Shape(alpha, *ALPHA_LEARNED_RANGE, init=ALPHA_START)

    @property
    def continued(self) -> bool:
        return self.alpha.learned or float(self.alpha.value()) < 1

    def shape(self) -> float | Tensor:
        """The alpha trained on: alpha, or alpha_t from 2 toward it during continuation."""
        alpha = self.alpha.value()
        if not self.continued or self.progress >= 1:
            return alpha
        if alpha == -math.inf:  # 2 - 2t / (1 - t): from 2 toward -inf as t -> 1
            return CONVEX_P - CONVEX_P * self.progress / (1 - self.progress)
        return linear(CONVEX_P, alpha, self.progress)

    def elementwise(self, residual: Tensor) -> Tensor:
        return barron_rho(residual / self.c, self.shape())

    def learned(self) -> dict[str, float]:
        value = self.alpha.learned_value()
        return {} if value is None else {"learned_alpha": value}


CRITERIA.register(
    "barron",
    Barron,
    [
        Param(
            "alpha",
            Number(allow_inf=True, low_open=False, high_open=False, keywords=("learned",)),
            help="shape: 2 = L2, 1 = Charbonnier, 0 = Cauchy, -2 = Geman-McClure, -inf = Welsch; "
            "learned in (0, 4)",
        ),
        Param("c", Number(low=0), 1.0, help="scale of the quadratic bowl"),
    ],
    summary="Barron's general adaptive robust loss rho(r, alpha, c)",
)


class Cauchy(ElementwiseLoss):
    """Cauchy log(1 + 0.5 (r/c)^2), Barron's alpha = 0: training starts from Barron's alpha = 2,
    0.5 (r/c)^2, and moves alpha to 0 (lpae.criteria.continuation)."""

    name = "cauchy"
    robust = True

    def __init__(self, c: float = 1.0, feature_shape: Sequence[int] | None = None, **_: Any) -> None:
        super().__init__(c=c)
        self.c = float(c)

    @property
    def continued(self) -> bool:
        return True

    def elementwise(self, residual: Tensor) -> Tensor:
        if self.progress < 1:  # Barron's rho from alpha = 2 (quadratic) toward 0 (lpae.criteria.continuation)
            return barron_rho(residual / self.c, float(linear(CONVEX_P, 0.0, self.progress)))
        return torch.log1p(0.5 * (residual / self.c).square())


CRITERIA.register(
    "cauchy",
    Cauchy,
    [Param("c", Number(low=0), 1.0, help="scale")],
    summary="Cauchy log(1 + 0.5 (r/c)^2), Barron's alpha = 0",
)
