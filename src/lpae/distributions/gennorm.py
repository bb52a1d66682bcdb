"""The generalized normal (exponential power) distribution as a ``torch.distributions.Distribution``.

    f(x | mu, alpha, p) = p / (2 alpha Gamma(1/p)) * exp(-(|x - mu| / alpha)^p)
    log f = -(|x - mu| / alpha)^p - log(2 alpha) - lgamma(1/p) + log p   (= scipy.stats.gennorm.logpdf)
    F(x) = 1/2 + sign(x - mu) / 2 * P(1/p, (|x - mu| / alpha)^p)

with P the regularized lower incomplete gamma function (torch.special.gammainc); REFERENCES.md,
generalized normal and quantized data. p = 2 is the Normal with sigma = alpha / sqrt(2), p = 1
the Laplace with b = alpha. Mean mu, variance alpha^2 Gamma(3/p) / Gamma(1/p), entropy
1/p - log p + log(2 alpha) + lgamma(1/p).

Sampling: if X = mu + alpha S G^(1/p) with S a random sign and G ~ Gamma(1/p, 1), then X has the
density f (substitute y = |x - mu|^p / alpha^p: y^(1/p - 1) e^(-y) is the Gamma(1/p) density).
torch's Gamma.rsample is reparameterised in its concentration, so ``rsample`` carries gradients
to mu, alpha and p. There is no ``icdf``: torch has no inverse incomplete gamma function.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, Gamma, constraints
from torch.distributions.utils import broadcast_all

Number = float | int


class GeneralizedNormal(Distribution):
    """Generalized normal with location ``loc``, scale ``scale`` (alpha) and shape ``p``, all
    broadcast together into the batch shape (module docstring)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "p": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(
        self,
        loc: Tensor | Number,
        scale: Tensor | Number,
        p: Tensor | Number,
        validate_args: bool | None = None,
    ) -> None:
        self.loc, self.scale, self.p = broadcast_all(loc, scale, p)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> GeneralizedNormal:
        new = self._get_checked_instance(GeneralizedNormal, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        new.p = self.p.expand(batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self.scale.square() * torch.exp(torch.lgamma(3 / self.p) - torch.lgamma(1 / self.p))

    def rsample(self, sample_shape: Any = torch.Size()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        concentration = (1 / self.p).expand(shape)
        g = Gamma(concentration, torch.ones_like(concentration), validate_args=False).rsample()
        sign = torch.where(torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device) < 0.5, -1.0, 1.0)
        magnitude = g.clamp_min(torch.finfo(g.dtype).tiny).pow(1 / self.p)  # |X - mu| / alpha
        return self.loc + self.scale * sign * magnitude

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc).abs() / self.scale
        positive = z > 0
        power = torch.where(positive, torch.where(positive, z, 1.0).pow(self.p), 0.0)  # 0^p = 0, no nan
        return -power - torch.log(2 * self.scale) - torch.lgamma(1 / self.p) + torch.log(self.p)

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        r = value - self.loc
        mass = torch.special.gammainc(1 / self.p, (r.abs() / self.scale).pow(self.p))
        return 0.5 + 0.5 * torch.sign(r) * mass

    def entropy(self) -> Tensor:
        return 1 / self.p - torch.log(self.p) + math.log(2) + torch.log(self.scale) + torch.lgamma(1 / self.p)
