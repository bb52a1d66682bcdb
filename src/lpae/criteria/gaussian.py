"""Gaussian decoder: NLL = 0.5 ((x - mu) / sigma)^2 + log sigma + 0.5 log(2 pi) per element.

``gaussian:scale=S`` with sigma = S (lpae.criteria.scale: a number, learned, learned_per_feature,
calibrated, predicted). The calibrated scale is the sigma-VAE rule (Rybkin, Daniilidis & Levine
2021): sigma*^2 = mean r^2 over every element of the batch, where the summed NLL of D features is
(D/2) log MSE + D/2 + (D/2) log(2 pi). At a fixed sigma the NLL is the squared error
r^2 / (2 sigma^2) plus a constant: lp:2 up to an affine map.

It is the generalized normal with p = 2 and alpha = sqrt(2) sigma, so the shared-scale path is
gennorm's (a fused sum of squares); element-wise scales use torch.distributions.Normal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor
from torch.distributions import Normal

from lpae.criteria.base import CRITERIA
from lpae.criteria.power_family import PowerFamily
from lpae.criteria.scale import scale_param


class Gaussian(PowerFamily):
    """Normal decoder N(mu, sigma^2) per feature."""

    name = "gaussian"
    energy = 2.0
    kappa = math.sqrt(2.0)

    def __init__(
        self, scale: float | str = "learned", feature_shape: Sequence[int] | None = None, **_: Any
    ) -> None:
        super().__init__(scale, feature_shape)

    def power(self) -> float:
        return 2.0

    def element_nll(self, residual: Tensor, log_scale: Tensor) -> Tensor:
        return -Normal(0.0, log_scale.exp(), validate_args=False).log_prob(residual)


CRITERIA.register(
    "gaussian",
    Gaussian,
    [scale_param()],
    summary="Gaussian NLL 0.5 (r/sigma)^2 + log sigma + 0.5 log(2 pi); calibrated = sigma-VAE",
)
