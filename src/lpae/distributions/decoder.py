"""p(x | z) of a trained decoder: the distribution whose negative log-density, summed over
features, is the criterion's NLL.

    gaussian    Normal(mu, sigma)                  laplace     Laplace(mu, b)
    gennorm     GeneralizedNormal(mu, alpha, p)    student_t   StudentT(nu, mu, s)
    barron_nll  Barron(mu, c, alpha)               cbernoulli  ContinuousBernoulli(logits=l)
    beta        Beta(m K, (1 - m) K)

The location, and the logits of the unit-interval families, are the decoder output (its first
channel block with scale=predicted or a predicted concentration); the scale is the criterion's
own: fixed, learned (per feature too) or predicted, after the soft floor of lpae.criteria.scale.
A ``scale=calibrated`` criterion has no scale of its own outside a batch of data: hold one
(``criterion.scale.held(value)``, e.g. the maximum-likelihood scale of validation residuals)
before asking. Plain losses and the improper Bernoulli baseline have no distribution.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import ContinuousBernoulli, Distribution, Laplace, Normal, StudentT

from lpae.criteria import Criterion
from lpae.criteria.barron_nll import BarronNLL
from lpae.criteria.gaussian import Gaussian
from lpae.criteria.gennorm import GenNorm
from lpae.criteria.laplace import LaplaceNLL
from lpae.criteria.likelihood import LocationScale
from lpae.criteria.student_t import StudentTNLL
from lpae.criteria.unit import BetaNLL, ContinuousBernoulliNLL
from lpae.distributions.barron import Barron
from lpae.distributions.gennorm import GeneralizedNormal


def no_calibration(residual: Tensor) -> Tensor:
    raise ValueError(
        "a scale=calibrated decoder has no scale without data; hold one with criterion.scale.held(value)"
    )


def as_tensor(value: float | Tensor, like: Tensor) -> Tensor:
    """A shape parameter in ``like``'s dtype (a float made a tensor in that dtype, not float32 first)."""
    return (
        value.to(like)
        if isinstance(value, Tensor)
        else torch.tensor(value, dtype=like.dtype, device=like.device)
    )


def location_and_scale(criterion: LocationScale, out: Tensor) -> tuple[Tensor, Tensor]:
    """The location (B, C, ...) and the scale s (broadcastable to it) of a decoder output."""
    location, raw = (out, None) if criterion.n_outputs == 1 else out.chunk(2, dim=1)
    log_scale = criterion.scale.log_scale(location, raw, no_calibration)
    return location, log_scale.exp().expand_as(location)


def decoder_distribution(criterion: Criterion, out: Tensor) -> Distribution:
    """The decoder distribution of ``criterion`` for decoder output ``out`` (module docstring),
    batch shape that of the data (B, C, ...); ValueError for a criterion without one."""
    if isinstance(criterion, ContinuousBernoulliNLL):
        return ContinuousBernoulli(logits=out)
    if isinstance(criterion, BetaNLL):
        return criterion.distribution(out)
    if not isinstance(criterion, LocationScale):
        raise ValueError(
            f"{criterion} is {'an improper likelihood' if criterion.improper else 'a plain loss'}, "
            f"not a decoder distribution: it has only a mean (a likelihood criterion, e.g. gaussian, "
            f"has a distribution to draw from)"
        )
    location, scale = location_and_scale(criterion, out)
    if isinstance(criterion, Gaussian):
        return Normal(location, scale)
    if isinstance(criterion, LaplaceNLL):
        return Laplace(location, scale)
    if isinstance(criterion, GenNorm):
        return GeneralizedNormal(location, scale, as_tensor(criterion.power(), location))
    if isinstance(criterion, StudentTNLL):
        return StudentT(criterion.df_tensor(location), location, scale)
    if isinstance(criterion, BarronNLL):
        return Barron(location, scale, as_tensor(criterion.shape(), location))
    raise ValueError(f"{criterion}: no decoder distribution is known for this family")
