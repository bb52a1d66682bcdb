"""Laplace decoder: NLL = |x - mu| / b + log(2 b) per element.

``laplace:scale=S`` with b = S (lpae.criteria.scale). The calibrated (maximum-likelihood) scale
is b = mean |r|, where the mean NLL per element is log(2 b) + 1. At a fixed b the NLL is the
absolute error |r| / b plus a constant: lp:1 (with eps=0) up to an affine map.

It is the generalized normal with p = 1 and alpha = b, so the shared-scale path is gennorm's
(a fused sum of |r|); element-wise scales use torch.distributions.Laplace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor
from torch.distributions import Laplace

from lpae.criteria.base import CRITERIA
from lpae.criteria.power_family import PowerFamily
from lpae.criteria.scale import scale_param


class LaplaceNLL(PowerFamily):
    """Laplace decoder with location mu and scale b per feature."""

    name = "laplace"
    robust = True
    energy = 1.0
    kappa = 1.0

    def __init__(
        self, scale: float | str = "learned", feature_shape: Sequence[int] | None = None, **_: Any
    ) -> None:
        super().__init__(scale, feature_shape)

    def power(self) -> float:
        return 1.0

    def element_nll(self, residual: Tensor, log_scale: Tensor) -> Tensor:
        return -Laplace(0.0, log_scale.exp(), validate_args=False).log_prob(residual)


CRITERIA.register(
    "laplace",
    LaplaceNLL,
    [scale_param()],
    summary="Laplace NLL |r|/b + log(2b); calibrated b = mean |r|",
)
