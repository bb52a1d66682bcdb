"""Location-scale families whose energy is a power of |r|: gennorm, and gaussian and laplace as its
p = 2 and p = 1 members.

    NLL per element = (|r| / alpha)^p + log alpha + log 2 + lgamma(1/p) - log p,  alpha = kappa s

with s the family's own scale (Gaussian: sigma, alpha = sqrt(2) sigma; Laplace: b, alpha = b).
With a shared scale (fixed, learned, calibrated) the sum over D features is

    S_b / alpha^p + D (log alpha + log 2 + lgamma(1/p) - log p),    S_b = sum_i |r_bi|^p,

and S_b comes from the fused kernel lpae.criteria.power.power_sum (learned p included), which
is what makes these likelihoods about as cheap as a plain L_p loss. The calibrated scale is the
closed form alpha_hat = (p mean|r|^p)^(1/p) from the same sums, differentiable. Per-feature and
predicted scales use the element-wise formula.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from lpae.criteria.likelihood import LocationScale
from lpae.criteria.power import power_sum


def log_normaliser(p: float | Tensor) -> float | Tensor:
    """log 2 + lgamma(1/p) - log p: the generalized-normal constant at unit scale."""
    if isinstance(p, Tensor):
        return math.log(2.0) + torch.lgamma(1.0 / p) - torch.log(p)
    return math.log(2.0) + math.lgamma(1.0 / p) - math.log(p)


def abs_power(z: Tensor, p: float | Tensor) -> Tensor:
    """|z|^p with gradient 0 (not nan) at z = 0."""
    return z.abs().clamp_min(torch.finfo(z.dtype).tiny).pow(p)


class PowerFamily(LocationScale):
    """NLL per element (|r| / alpha)^p + log alpha + log_normaliser(p), alpha = kappa * scale."""

    kappa: ClassVar[float] = 1.0

    def power(self) -> float | Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        if not self.scale.shared:
            return super().forward(x, out)
        location, _ = self.split(x, out)
        p = self.power()
        sums = power_sum(x, location, p)  # (B,) sum_i |r|^p
        n_features = location[0].numel()
        if self.scale.mode == "calibrated":
            count = sums.numel() * n_features
            log_scale = self.scale.calibrated(lambda: self.log_scale_from_sums(sums, count, p), location)
        else:
            log_scale = self.scale.log_scale(location, None, self.log_ml_scale)
        log_alpha = log_scale + math.log(self.kappa)
        return sums * torch.exp(-p * log_alpha) + n_features * (log_alpha + log_normaliser(p))

    def element_nll(self, residual: Tensor, log_scale: Tensor) -> Tensor:
        p = self.power()
        log_alpha = log_scale + math.log(self.kappa)
        return abs_power(residual * torch.exp(-log_alpha), p) + log_alpha + log_normaliser(p)

    def log_scale_from_sums(self, sums: Tensor, count: int, p: float | Tensor) -> Tensor:
        """log s_hat from sum |r|^p over ``count`` elements: alpha_hat = (p mean|r|^p)^(1/p)."""
        mean_power = (sums.sum() / count).clamp_min(torch.finfo(sums.dtype).tiny)
        log_p = torch.log(p) if isinstance(p, Tensor) else math.log(p)
        return (log_p + torch.log(mean_power)) / p - math.log(self.kappa)

    def log_ml_scale(self, residual: Tensor) -> Tensor:
        p = self.power()
        return self.log_scale_from_sums(power_sum(None, residual, p), residual.numel(), p)
