"""Student-t decoder: heavy tails with learnable degrees of freedom.

    NLL = 0.5 (nu + 1) log1p((r / s)^2 / nu) + log s + lgamma(nu/2) - lgamma((nu+1)/2) + 0.5 log(nu pi)

per element (= -scipy.stats.t(nu, loc=mu, scale=s).logpdf(x)), computed by
torch.distributions.StudentT. ``student_t:df=F,scale=S``: F a positive number or ``learned``
(nu = 0.1 + softplus(theta), starting at 4: no upper bound, nu -> inf is the Gaussian); S as in
lpae.criteria.scale.

The ML scale has no closed form. scale=calibrated solves the score equation
mean_i (nu + 1) v_i / (nu + v_i) = 1, v_i = (r_i / s)^2, by Brent's method with gradients from
the implicit function theorem (lpae.criteria.implicit_scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.distributions import StudentT

from lpae.criteria.base import CRITERIA
from lpae.criteria.implicit_scale import solve_log_scale
from lpae.criteria.likelihood import LocationScale
from lpae.criteria.scale import Shape, scale_param
from lpae.spec import Number, Param

DF_FLOOR = 0.1
DF_START = 4.0


class StudentTNLL(LocationScale):
    """Student-t decoder with fixed or learned degrees of freedom."""

    name = "student_t"
    robust = True

    def __init__(
        self,
        df: float | str = "learned",
        scale: float | str = "learned",
        feature_shape: Sequence[int] | None = None,
        **_: Any,
    ) -> None:
        super().__init__(scale, feature_shape, df=df)
        self.df = Shape(df, DF_FLOOR, None, init=DF_START)

    def df_tensor(self, like: Tensor) -> Tensor:
        return torch.as_tensor(self.df.value(), dtype=like.dtype, device=like.device)

    def element_nll(self, residual: Tensor, log_scale: Tensor) -> Tensor:
        df = self.df_tensor(residual)
        return -StudentT(df, 0.0, log_scale.exp(), validate_args=False).log_prob(residual)

    def log_ml_scale(self, residual: Tensor) -> Tensor:
        df = self.df_tensor(residual)
        return solve_log_scale(residual, lambda v: (df + 1) * v / (df + v))

    def learned(self) -> dict[str, float]:
        found = super().learned()
        value = self.df.learned_value()
        if value is not None:
            found["learned_df"] = value
        return found


CRITERIA.register(
    "student_t",
    StudentTNLL,
    [
        Param("df", Number(low=0, keywords=("learned",)), "learned", help="degrees of freedom"),
        scale_param(),
    ],
    summary="Student-t NLL, heavy tails; df learned as 0.1 + softplus; calibrated scale by Brent",
)
