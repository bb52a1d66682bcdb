"""Student-t decoder: heavy tails with learnable degrees of freedom.

    NLL = 0.5 (nu + 1) log1p((r / s)^2 / nu) + log s + lgamma(nu/2) - lgamma((nu+1)/2) + 0.5 log(nu pi)

per element (= -scipy.stats.t(nu, loc=mu, scale=s).logpdf(x)). ``student_t:df=F,scale=S``: F a
positive number or ``learned`` (nu = 0.1 + softplus(theta), starting at 4: no upper bound,
nu -> inf is the Gaussian); S as in lpae.criteria.scale.

The constant K(nu) = lgamma(nu/2) - lgamma((nu+1)/2) + 0.5 log(nu pi) is a difference of two
large lgamma values (7e7 each at nu = 1e7) that tends to 0.5 log(2 pi): in float32 the direct
form (torch.distributions.StudentT's) is off by 0.2 nats typically for nu in [1e6, 2e6] (up to
0.9), and by up to 8 nats for nu in [1e7, 2e7]. So with x = nu / 2 it is computed as the lgamma
difference only for x < STUDENT_T_SERIES_FROM = 8, and above from the asymptotic expansion of
lgamma(x + h) (DLMF 5.11.8) at h = 1/2 minus that at h = 0, with the Bernoulli numbers B_n and
B_n(1/2) = (2^(1-n) - 1) B_n:

    K = 0.5 log(2 pi) + sum_{n = 2, 4, ..., 20} (2 - 2^(1-n)) B_n / (n (n-1) x^(n-1))
      = 0.5 log(2 pi) + 1/(8x) - 1/(192 x^3) + 1/(640 x^5) - 17/(14336 x^7) + ...,

whose truncation error at x >= 8 is below 1e-16 relative, so K is exact to the working precision
in float32 and float64 alike, and differentiable in nu for a learned df.

With a fixed or learned scale, large CPU batches take a compiled single-sweep kernel for
sum_i log1p(r^2 / (nu s^2)) once lpae.criteria.inductor decides to compile
(lpae.criteria.student_t_compiled); every other call takes the element-wise autograd chain.

The ML scale has no closed form. scale=calibrated solves the score equation
mean_i (nu + 1) v_i / (nu + v_i) = 1, v_i = (r_i / s)^2, by Brent's method with gradients from
the implicit function theorem (lpae.criteria.implicit_scale).

A fixed df below DF_CONVEX = 100 trains from df = 100 (nearly Gaussian) down to df over the first
part of training, geometrically (lpae.criteria.continuation); a learned df has no schedule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lpae.criteria import student_t_compiled
from lpae.criteria.base import CRITERIA, per_sample
from lpae.criteria.continuation import DF_CONVEX, geometric
from lpae.criteria.implicit_scale import solve_log_scale
from lpae.criteria.likelihood import LocationScale
from lpae.criteria.scale import Shape, scale_param
from lpae.spec import Number, Param

DF_FLOOR = 0.1
DF_START = 4.0
STUDENT_T_SERIES_FROM = 8.0  # x = nu / 2 from which K(nu) comes from the asymptotic expansion
# (2 - 2^(1-n)) B_n / (n (n-1)) for n = 2, 4, ..., 20: the coefficients of x^-(n-1)
STUDENT_T_SERIES = (
    1 / 8,
    -1 / 192,
    1 / 640,
    -17 / 14336,
    31 / 18432,
    -691 / 180224,
    5461 / 425984,
    -929569 / 15728640,
    3202291 / 8912896,
    -221930581 / 79691776,
)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def series_tail(x: Tensor | float) -> Tensor | float:
    """sum_k c_k x^-(2k+1) over STUDENT_T_SERIES, for x >= STUDENT_T_SERIES_FROM."""
    u = 1.0 / (x * x)
    total: Tensor | float = STUDENT_T_SERIES[-1]
    for c in reversed(STUDENT_T_SERIES[:-1]):
        total = total * u + c
    return total / x


def student_t_log_normalizer(df: Tensor | float) -> Tensor | float:
    """K(nu) = lgamma(nu/2) - lgamma((nu+1)/2) + 0.5 log(nu pi), accurate for every nu > 0 in the
    argument's precision (module docstring); a float for a float, a tensor (differentiable) for a
    tensor."""
    x = df / 2
    if not isinstance(x, Tensor):
        if x >= STUDENT_T_SERIES_FROM:
            return HALF_LOG_2PI + series_tail(x)
        return math.lgamma(x) - math.lgamma(x + 0.5) + 0.5 * math.log(2 * math.pi * x)
    far = x >= STUDENT_T_SERIES_FROM
    x_far = torch.where(far, x, STUDENT_T_SERIES_FROM)  # each branch sees only its own range
    x_near = torch.where(far, STUDENT_T_SERIES_FROM, x)
    near = torch.lgamma(x_near) - torch.lgamma(x_near + 0.5) + 0.5 * torch.log(2 * math.pi * x_near)
    return torch.where(far, HALF_LOG_2PI + series_tail(x_far), near)


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

    @property
    def continued(self) -> bool:
        return not self.df.learned and float(self.df.value()) < DF_CONVEX

    def shape(self) -> float | Tensor:
        """df, or df_t from DF_CONVEX (nearly Gaussian) down to a fixed df during continuation."""
        df = self.df.value()
        return geometric(DF_CONVEX, float(df), self.progress) if self.continued else df

    def df_tensor(self, like: Tensor) -> Tensor:
        return torch.as_tensor(self.shape(), dtype=like.dtype, device=like.device)

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        """With a fixed or learned scale, on large CPU batches once lpae.criteria.inductor compiles:
        0.5 (df + 1) T_b + D (log s + K(df)) with T_b from lpae.criteria.student_t_compiled; else
        the element-wise autograd chain of element_nll (the same values to float rounding)."""
        if self.scale.mode not in ("fixed", "learned"):
            return super().forward(x, out)
        location, _ = self.split(x, out)
        flat_hat = location.reshape(location.shape[0], -1)  # (B, D)
        if not student_t_compiled.FORWARD.wanted(flat_hat):
            residual = location - x  # as LocationScale.forward, without checking the pair again
            return per_sample(
                self.element_nll(residual, self.scale.log_scale(residual, None, self.log_ml_scale))
            )
        log_scale = self.scale.log_scale(location, None, self.log_ml_scale)  # 0-dim
        df = self.shape()
        c = (df * torch.exp(2 * log_scale)).to(flat_hat.dtype)  # df s^2
        total = student_t_compiled.CompiledLog1pSum.apply(x.reshape(flat_hat.shape), flat_hat, c)
        n_features = flat_hat.shape[1]
        return 0.5 * (df + 1) * total + n_features * (log_scale + student_t_log_normalizer(df))

    def element_nll(self, residual: Tensor, log_scale: Tensor) -> Tensor:
        df = self.shape()  # a float when fixed, a 0-dim tensor when learned
        z = residual * torch.exp(-log_scale)
        return 0.5 * (df + 1) * torch.log1p(z.square() / df) + log_scale + student_t_log_normalizer(df)

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
