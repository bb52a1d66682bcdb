"""Barron's distribution (Barron, CVPR 2019) as a ``torch.distributions.Distribution``, alpha >= 0.

    f(x | mu, c, alpha) = exp(-rho((x - mu) / c, alpha, 1)) / (c Z(alpha))
    log f = -rho((x - mu) / c, alpha, 1) - log c - log Z(alpha)

rho is lpae.criteria.barron.barron_rho and log Z(alpha) the quadrature table of
lpae.criteria.barron_partition (REFERENCES.md, Barron). Only alpha >= 0 gives a density.
alpha = 2 is the Normal with sigma = c; alpha = 0 is the Cauchy with scale sqrt(2) c, since
exp(-rho(u, 0)) = 1 / (1 + u^2 / 2).

Sampling is exact, by rejection from that Cauchy: rho(u, alpha) increases with alpha (Barron
2019, section 2), so exp(-rho(u, alpha)) <= exp(-rho(u, 0)) for alpha >= 0; a proposal
u = sqrt(2) tan(pi (U - 1/2)) is accepted when V < exp(rho(u, 0) - rho(u, alpha)), with U, V
uniform; the acceptance rate is Z(alpha) / Z(0) (above 0.46 for alpha <= 8). There is no
``rsample`` (the draw is not differentiable in alpha).

The CDF is tabulated by quadrature once per alpha: with t = sqrt(2) sinh(y),

    G(y) = integral_0^(sqrt 2 sinh y) exp(-rho(t, alpha)) dt
         = integral_0^y sqrt(2) cosh(s) exp(-rho(sqrt(2) sinh s, alpha)) ds,

whose integrand is smooth and decays at least like e^(-s) (alpha = 0: sqrt(2) / cosh s), summed
by Simpson's rule on CDF_NODES intervals of [0, CDF_Y_MAX] and interpolated by cubic Hermite
polynomials with the exact slopes (both O(h^4)):
F(x) = 1/2 + sign(u) G(y(|u|)) / (2 G(CDF_Y_MAX)), u = (x - mu) / c. Twice G(CDF_Y_MAX) matches
Z(alpha) by adaptive quadrature to about 1e-13 relative, and F within 1e-11 of adaptive
quadrature (tests/test_distributions.py). The CDF is computed in NumPy: it has no gradient.

alpha is one number (or a 0-dim tensor) for the whole batch, as in the barron_nll decoder; loc
and scale broadcast into the batch shape.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from scipy.interpolate import CubicHermiteSpline
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all

from lpae.criteria.barron import barron_rho
from lpae.criteria.barron_partition import log_partition

CDF_NODES = 1 << 15
CDF_Y_MAX = 45.0  # the alpha = 0 tail beyond sqrt(2) sinh(45) holds 1e-19 of the mass
SQRT2 = math.sqrt(2.0)


def acceptance_log_ratio(u: Tensor, alpha: float) -> Tensor:
    """rho(u, 0) - rho(u, alpha) <= 0, the log acceptance probability of a Cauchy proposal u."""
    return barron_rho(u, 0.0) - barron_rho(u, alpha)


def integrand(y: Tensor, alpha: float) -> Tensor:
    """sqrt(2) cosh(y) exp(-rho(sqrt(2) sinh y, alpha)): dG/dy (module docstring)."""
    return SQRT2 * torch.cosh(y) * torch.exp(-barron_rho(SQRT2 * torch.sinh(y), alpha))


@functools.lru_cache(maxsize=64)
def half_line_integral(alpha: float) -> CubicHermiteSpline:
    """G(y) = integral_0^(sqrt 2 sinh y) exp(-rho(t, alpha)) dt on [0, CDF_Y_MAX]: Simpson's rule
    on each of CDF_NODES intervals, summed, and the cubic Hermite interpolant through the nodes
    with the exact slopes dG/dy (module docstring); G(CDF_Y_MAX) = Z(alpha) / 2."""
    step = CDF_Y_MAX / CDF_NODES
    y = torch.arange(2 * CDF_NODES + 1, dtype=torch.float64).mul(0.5 * step)  # nodes and midpoints
    f = integrand(y, alpha).numpy()
    pieces = step / 6 * (f[:-1:2] + 4 * f[1::2] + f[2::2])
    return CubicHermiteSpline(y[::2].numpy(), np.concatenate([[0.0], np.cumsum(pieces)]), f[::2])


class Barron(Distribution):
    """Barron's density with location ``loc``, scale ``scale`` (c) and shape ``alpha`` >= 0
    (module docstring)."""

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "alpha": constraints.greater_than_eq(0.0),
    }
    support = constraints.real
    has_rsample = False

    def __init__(
        self,
        loc: Tensor | float,
        scale: Tensor | float,
        alpha: Tensor | float,
        validate_args: bool | None = None,
    ) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        alpha_tensor = torch.as_tensor(alpha, dtype=self.loc.dtype, device=self.loc.device)
        if alpha_tensor.dim() != 0:
            raise ValueError(
                f"Barron: alpha must be one number for the whole batch, got shape {tuple(alpha_tensor.shape)}"
            )
        self.alpha = alpha_tensor
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Barron:
        new = self._get_checked_instance(Barron, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        new.alpha = self.alpha
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def shape_value(self) -> float | Tensor:
        """alpha as a number (every alpha >= 0 allowed), or as the tensor when it needs a gradient
        (then within the table of log Z, [0, 8])."""
        return self.alpha if self.alpha.requires_grad else float(self.alpha)

    @property
    def mean(self) -> Tensor:
        """loc where the mean exists (alpha > 0: tails exp(-|u|^alpha)); nan for the Cauchy alpha = 0."""
        if float(self.alpha) == 0:
            return torch.full_like(self.loc, math.nan)
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        alpha = self.shape_value()
        return (
            -barron_rho((value - self.loc) / self.scale, alpha) - torch.log(self.scale) - log_partition(alpha)
        )

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        u = ((value - self.loc) / self.scale).detach().to("cpu", torch.float64).numpy()
        spline = half_line_integral(float(self.alpha))
        y = np.minimum(np.arcsinh(np.abs(u) / SQRT2), CDF_Y_MAX)
        half = spline(y) / spline(CDF_Y_MAX)
        cdf = 0.5 + 0.5 * np.sign(u) * half
        return torch.as_tensor(cdf, dtype=self.loc.dtype, device=self.loc.device)

    @torch.no_grad()
    def sample(self, sample_shape: Any = torch.Size()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        n = math.prod(shape)
        alpha = float(self.alpha)
        accepted: list[Tensor] = []
        found = 0
        while found < n:
            size = max(64, 2 * (n - found) + 16)
            u = SQRT2 * torch.tan(math.pi * (torch.rand(size, dtype=torch.float64) - 0.5))
            v = torch.rand(size, dtype=torch.float64)
            keep = u[torch.log(v) < acceptance_log_ratio(u, alpha)]
            accepted.append(keep)
            found += len(keep)
        standard = torch.cat(accepted)[:n].reshape(shape).to(self.loc.dtype)
        return self.loc + self.scale * standard.to(self.loc.device)
