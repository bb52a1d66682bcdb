"""Laplace decoder: NLL = |x - mu| / b + log(2 b) per element.

``laplace:scale=S`` with b = S (lpae.criteria.scale). The calibrated (maximum-likelihood) scale
is b = mean |r|, where the mean NLL per element is log(2 b) + 1. At a fixed b the NLL is the
absolute error |r| / b plus a constant: lp:1 (with eps=0) up to an affine map.

It is the generalized normal with p = 1 and alpha = b, so it computes as gennorm does (a fused
sum of |r| for a shared scale, the element-wise formula otherwise), and it trains as gennorm:p=1
does: under continuation (lpae.criteria.continuation) its exponent moves from 2 to 1, as lp:1's
does, so that a Laplace decoder is not trained worse than the plain L1 loss it generalises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from lpae.criteria.base import CRITERIA
from lpae.criteria.continuation import CONVEX_P, linear
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

    @property
    def continued(self) -> bool:
        return True

    def power(self) -> float | Tensor:
        """1, or p_t from 2 toward 1 during continuation (lpae.criteria.continuation)."""
        return float(linear(CONVEX_P, 1.0, self.progress))


CRITERIA.register(
    "laplace",
    LaplaceNLL,
    [scale_param()],
    summary="Laplace NLL |r|/b + log(2b); calibrated b = mean |r|",
)
