"""The per-sample L_p distance ||x - x_hat||_p = (sum_i |r_i|^p)^(1/p), the seed question's literal form.

Unlike lp (the sum of |r|^p, an energy), this is a distance: homogeneous of degree 1, and for
p = 2 the un-squared Euclidean distance. Its gradient is undefined at a perfect reconstruction
(r = 0 for every feature), so it is smoothed:

    d_{p,eps}(r) = (sum_i (r_i^2 + eps^2)^(p/2))^(1/p) - (D eps^p)^(1/p)

the L_p norm of the vector (sqrt(r_i^2 + eps^2))_i minus its value at r = 0. It is 0 at r = 0
with gradient 0 there, and tends to ||r||_p as eps -> 0. ``lpnorm:p=P,eps=E``: P > 0, E >= 0
(default 1e-3; E = 0 is the exact norm, whose gradient is nan at r = 0). For p < 1 it is
Aggarwal et al.'s fractional "metric" (not a norm: the triangle inequality fails).

For p <= 1 it trains from p = 2 toward p over the first part of training, as lp does
(lpae.criteria.continuation). The inner sum is lp's fused kernel (lpae.criteria.power.power_sum).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from lpae.criteria.base import CRITERIA, Criterion, CriterionTags, check_pair
from lpae.criteria.continuation import CONVEX_P, linear
from lpae.criteria.power import power_sum
from lpae.spec import Number, Param


class LpNorm(Criterion):
    """Per-sample smoothed L_p distance (see the module docstring)."""

    name = "lpnorm"

    def __init__(
        self, p: float, eps: float = 1e-3, feature_shape: Sequence[int] | None = None, **_: Any
    ) -> None:
        super().__init__(p=p, eps=eps)
        self.p = float(p)
        self.eps = float(eps)

    @classmethod
    def tags(cls, values: Mapping[str, Any]) -> CriterionTags:
        """A function of sum |r|^p per sample: energy p."""
        return replace(super().tags(values), energy=float(values["p"]))

    @property
    def continued(self) -> bool:
        return self.p <= 1

    def power(self) -> float:
        """The exponent trained on: p, or p_t from 2 toward p during continuation."""
        return float(linear(CONVEX_P, self.p, self.progress)) if self.continued else self.p

    def distance(self, residual: Tensor) -> Tensor:
        """d_{p,eps} of each sample of ``residual`` (B, ...) -> (B,)."""
        p = self.power()
        return self.from_sums(power_sum(None, residual, p, self.eps), residual[0].numel(), p)

    def from_sums(self, sums: Tensor, n_features: int, p: float) -> Tensor:
        # sums = sum_i (r_i^2 + eps^2)^(p/2) - D eps^p; add the offset back inside the root
        offset = n_features * self.eps**p
        return torch.pow(sums + offset, 1.0 / p) - offset ** (1.0 / p)

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        check_pair(self, x, out)
        p = self.power()
        return self.from_sums(power_sum(x, out, p, self.eps), x[0].numel(), p)


CRITERIA.register(
    "lpnorm",
    LpNorm,
    [
        Param("p", Number(low=0), help="exponent, any p > 0"),
        Param("eps", Number(low=0, low_open=False), 1e-3, help="smoothing; 0 = exact norm"),
    ],
    summary="per-sample distance ||r||_p = (sum |r|^p)^(1/p), smoothed at r = 0",
)
