"""The L_p energy: rho_p(r) = |r|^p for any p > 0, summed over features.

|r|^p is the generalized-normal energy of shape p (REFERENCES.md): the NLL of
gennorm(beta=p, scale=alpha) is (|r|/alpha)^p + log(2 alpha) + lgamma(1/p) - log(p), so
L_p training is generalized-normal maximum likelihood at a fixed scale.

For p <= 1 the derivative at r = 0 is undefined (p = 1) or infinite (p < 1). The smoothed form

    rho_{p,eps}(r) = (r^2 + eps^2)^(p/2) - eps^p

keeps gradients finite, tends to |r|^p as eps -> 0, is 0 at r = 0, and is Charbonnier at p = 1.
``eps="auto"`` uses 1e-3 for p <= 1 and the exact |r|^p (eps = 0) for p > 1, whose gradient
p |r|^(p-1) sign(r) is finite everywhere.

For p <= 1 training starts from the convex L2 and moves the exponent to p over the first part
of training (lpae.criteria.continuation); without that, a plain lp:0.5 stalls near the mean.

The forward pass goes through :func:`lpae.criteria.power.power_sum`, a fused value-and-gradient
kernel (one power per element, sqrt forms for p = 0.5, 1, 1.5, 2); ``elementwise`` keeps the
plain formula for element-wise use (``reduction="none"`` of the torch-style classes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from torch import Tensor

from lpae.criteria.base import CRITERIA, CriterionTags, ElementwiseLoss, check_pair
from lpae.criteria.continuation import CONVEX_P, linear
from lpae.criteria.power import power_sum
from lpae.spec import Number, Param

DEFAULT_EPS = 1e-3


def resolve_eps(p: float, eps: float | str) -> float:
    if eps == "auto":
        return DEFAULT_EPS if p <= 1 else 0.0
    return float(eps)


def lp_energy(residual: Tensor, p: float, eps: float) -> Tensor:
    """Element-wise rho_{p,eps}(r); the exact |r|^p when eps = 0."""
    if eps == 0:
        return residual.abs().pow(p)
    return (residual.square() + eps * eps).pow(p / 2) - eps**p


class Lp(ElementwiseLoss):
    """Sum over features of |x_hat - x|^p (smoothed near 0 by eps, see the module docstring)."""

    name = "lp"

    def __init__(self, p: float, eps: float | str = "auto", **_: Any) -> None:
        super().__init__(p=p, eps=eps)
        self.p = float(p)
        self.eps = resolve_eps(self.p, eps)

    @classmethod
    def tags(cls, values: Mapping[str, Any]) -> CriterionTags:
        """Energy |r|^p; robust (at most linear tails) for p <= 1."""
        p = float(values["p"])
        return replace(super().tags(values), robust=p <= 1, energy=p)

    @property
    def continued(self) -> bool:
        return self.p <= 1

    def power(self) -> float:
        """The exponent trained on: p, or p_t from 2 toward p during continuation."""
        return float(linear(CONVEX_P, self.p, self.progress)) if self.continued else self.p

    def elementwise(self, residual: Tensor) -> Tensor:
        return lp_energy(residual, self.power(), self.eps)

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        check_pair(self, x, out)
        return power_sum(x, out, self.power(), self.eps)


CRITERIA.register(
    "lp",
    Lp,
    [
        Param("p", Number(low=0), help="exponent, any p > 0"),
        Param(
            "eps",
            Number(low=0, low_open=False, keywords=("auto",)),
            "auto",
            help="smoothing near r = 0; auto = 1e-3 for p <= 1, 0 for p > 1",
        ),
    ],
    summary="sum |r|^p, the generalized-normal energy (smoothed near 0 for p <= 1)",
)
CRITERIA.alias("l1", "lp:1")
CRITERIA.alias("l2", "lp:2")
