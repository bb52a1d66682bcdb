"""Barron's adaptive robust loss as a decoder likelihood (Barron, CVPR 2019), alpha >= 0.

    p(x | mu, alpha, c) = exp(-rho(x - mu, alpha, c)) / (c Z(alpha))
    NLL = rho(r / c, alpha, 1) + log c + log Z(alpha)

rho is lpae.criteria.barron.barron_rho; log Z(alpha) comes from the quadrature table of
lpae.criteria.barron_partition (differentiable in alpha). Only alpha >= 0 gives a density
(Z is infinite for alpha < 0). alpha = 2 is the Normal with sigma = c, alpha = 0 a Cauchy-like
density with tails |x|^-2.

``barron_nll:alpha=A,scale=S``: A a number >= 0 or ``learned`` (alpha = 4 sigmoid(theta), in
(0, 4), starting at 1); S as in lpae.criteria.scale, playing the role of c. scale=calibrated
solves the score equation mean_i v_i (v_i / |alpha - 2| + 1)^(alpha/2 - 1) = 1, v_i = (r_i / c)^2,
by Brent's method with implicit gradients (lpae.criteria.implicit_scale). An alpha below 1, or a
learned one, trains from alpha = 2 toward it over the first part of training (alpha_t =
2 + t (alpha - 2), lpae.criteria.continuation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lpae.criteria.barron import ALPHA_LEARNED_RANGE, ALPHA_START, NEAR_TWO, barron_rho
from lpae.criteria.barron_partition import log_partition
from lpae.criteria.base import CRITERIA
from lpae.criteria.continuation import CONVEX_P, linear
from lpae.criteria.implicit_scale import solve_log_scale
from lpae.criteria.likelihood import LocationScale
from lpae.criteria.scale import Shape, scale_param
from lpae.spec import Number, Param


def score_weight(v: Tensor, alpha: float | Tensor) -> Tensor:
    """w(v) = u rho'(u) = v (v / |alpha - 2| + 1)^(alpha/2 - 1) with v = u^2 (alpha = 2: w = v)."""
    if (float(alpha.detach()) if isinstance(alpha, Tensor) else float(alpha)) == 2:
        return v
    if isinstance(alpha, Tensor):
        beta = (alpha - 2).abs().clamp_min(NEAR_TWO)
    else:
        beta = torch.tensor(max(abs(alpha - 2), NEAR_TWO), dtype=v.dtype, device=v.device)
    return v * torch.exp((0.5 * alpha - 1) * torch.log1p(v / beta))


class BarronNLL(LocationScale):
    """Barron's density as a decoder, fixed or learned alpha (see the module docstring)."""

    name = "barron_nll"
    robust = True  # as the plain barron loss: heavier tails than the Gaussian for alpha < 2

    def __init__(
        self,
        alpha: float | str = "learned",
        scale: float | str = "learned",
        feature_shape: Sequence[int] | None = None,
        **_: Any,
    ) -> None:
        super().__init__(scale, feature_shape, alpha=alpha)
        self.alpha = Shape(alpha, *ALPHA_LEARNED_RANGE, init=ALPHA_START)
        if not self.alpha.learned:
            log_partition(self.alpha.value())  # fail early for alpha < 0

    @property
    def continued(self) -> bool:
        return self.alpha.learned or float(self.alpha.value()) < 1

    def shape(self) -> float | Tensor:
        """alpha, or alpha_t = 2 + t (alpha - 2) during continuation (lpae.criteria.continuation)."""
        alpha = self.alpha.value()
        return linear(CONVEX_P, alpha, self.progress) if self.continued else alpha

    def element_nll(self, residual: Tensor, log_scale: Tensor) -> Tensor:
        alpha = self.shape()
        log_z = log_partition(alpha)
        return barron_rho(residual * torch.exp(-log_scale), alpha) + log_scale + log_z

    def log_ml_scale(self, residual: Tensor) -> Tensor:
        alpha = self.shape()
        return solve_log_scale(residual, lambda v: score_weight(v, alpha))

    def learned(self) -> dict[str, float]:
        found = super().learned()
        value = self.alpha.learned_value()
        if value is not None:
            found["learned_alpha"] = value
        return found


CRITERIA.register(
    "barron_nll",
    BarronNLL,
    [
        Param(
            "alpha",
            Number(low=0, low_open=False, keywords=("learned",)),
            "learned",
            help="shape >= 0; learned in (0, 4)",
        ),
        scale_param(),
    ],
    summary="Barron's adaptive loss as a normalised density: rho + log c + log Z(alpha)",
)
