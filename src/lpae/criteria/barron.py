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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lpae.criteria.base import CRITERIA, ElementwiseLoss
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
        return 0.5 * v
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

    def elementwise(self, residual: Tensor) -> Tensor:
        return barron_rho(residual / self.c, self.alpha.value())

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
