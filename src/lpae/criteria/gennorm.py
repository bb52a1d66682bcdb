"""Generalized normal (exponential power) decoder: the likelihood whose energy is the L_p loss.

    f(x | mu, alpha, p) = p / (2 alpha Gamma(1/p)) * exp(-(|x - mu| / alpha)^p)
    NLL = (|r| / alpha)^p + log(2 alpha) + lgamma(1/p) - log p          (= -scipy.stats.gennorm.logpdf)

p = 2 is the Normal with sigma = alpha / sqrt(2), p = 1 the Laplace with b = alpha
(REFERENCES.md). Closed-form ML scale for fixed p (scale=calibrated):
alpha_hat = (p mean|r|^p)^(1/p), where the mean NLL per element is
log(2 alpha_hat) + lgamma(1/p) - log p + 1/p.

``gennorm:p=P,scale=S``: P a positive number or ``learned`` (one shared shape, bounded to
(0.1, 10) through a sigmoid, starting at 2); S as in lpae.criteria.scale. With a shared scale
(fixed, learned, calibrated) the NLL is S_b / alpha^p + D (log alpha + log 2 + lgamma(1/p) - log p)
with S_b = sum_i |r_bi|^p from the fused kernel lpae.criteria.power.power_sum; per-feature and
predicted scales use the element-wise formula (lpae.criteria.power_family). A fixed p <= 1
trains from p = 2 toward p over the first part of training (lpae.criteria.continuation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from torch import Tensor

from lpae.criteria.base import CRITERIA, CriterionTags
from lpae.criteria.continuation import CONVEX_P, linear
from lpae.criteria.power_family import PowerFamily
from lpae.criteria.scale import Shape, scale_param
from lpae.spec import Number, Param

P_LEARNED_RANGE = (0.1, 10.0)
P_LEARNED_START = 2.0


class GenNorm(PowerFamily):
    """Generalized-normal decoder with fixed or learned shape p (see the module docstring)."""

    name = "gennorm"
    robust = True

    def __init__(
        self,
        p: float | str = "learned",
        scale: float | str = "learned",
        feature_shape: Sequence[int] | None = None,
        **_: Any,
    ) -> None:
        super().__init__(scale, feature_shape, p=p)
        self.shape = Shape(p, *P_LEARNED_RANGE, init=P_LEARNED_START)

    @classmethod
    def tags(cls, values: Mapping[str, Any]) -> CriterionTags:
        """Energy |r|^p when p is fixed; a learned p has none."""
        p = values["p"]
        return replace(super().tags(values), energy=None if p == "learned" else float(p))

    @property
    def continued(self) -> bool:
        return not self.shape.learned and float(self.shape.value()) <= 1

    def power(self) -> float | Tensor:
        """p, or p_t from 2 toward a fixed p <= 1 during continuation (lpae.criteria.continuation)."""
        p = self.shape.value()
        return linear(CONVEX_P, p, self.progress) if self.continued else p

    def learned(self) -> dict[str, float]:
        found = super().learned()
        value = self.shape.learned_value()
        if value is not None:
            found["learned_p"] = value
        return found


CRITERIA.register(
    "gennorm",
    GenNorm,
    [
        Param("p", Number(low=0, keywords=("learned",)), "learned", help="shape; learned: in (0.1, 10)"),
        scale_param(),
    ],
    summary="generalized normal NLL (|r|/a)^p + log(2a) + lgamma(1/p) - log p: L_p as a likelihood",
)
