"""Location-scale decoder likelihoods: the forward pass shared by gaussian, laplace, gennorm,
student_t and barron_nll.

The decoder output gives the location mu (with scale=predicted also a raw log-scale per feature,
stacked after the locations along dim 1). With the residual r = mu - x and the log-scale log s
of lpae.criteria.scale, ``forward`` returns per sample the sum over features of the family's
element NLL in nats, -log p(x | mu, s), with every normalising constant, so that a VAE
optimises a true ELBO and NLLs of different families are comparable.

Each family gives ``element_nll(residual, log_scale)`` and ``log_ml_scale(residual)`` (the log of
its maximum-likelihood scale for the residuals, differentiable, used by scale=calibrated);
``calibrate(residual)`` is its exponential.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from lpae.criteria.base import Criterion, check_pair, per_sample
from lpae.criteria.scale import Scale


class LocationScale(Criterion):
    """Base of the location-scale likelihoods (see the module docstring)."""

    is_likelihood = True

    def __init__(self, scale: float | str, feature_shape: Sequence[int] | None, **spec_values: Any) -> None:
        super().__init__(scale=scale, **spec_values)
        self.scale = Scale(scale, feature_shape, owner=self.name)
        self.n_outputs = self.scale.n_outputs

    def split(self, x: Tensor, out: Tensor) -> tuple[Tensor, Tensor | None]:
        """(location, raw log-scale or None) from the decoder output, after checking shapes."""
        check_pair(self, x, out)
        if self.n_outputs == 1:
            return out, None
        location, raw_scale = out.chunk(2, dim=1)
        return location, raw_scale

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        location, raw_scale = self.split(x, out)
        residual = location - x  # (B, ...)
        log_scale = self.scale.log_scale(residual, raw_scale, self.log_ml_scale)
        return per_sample(self.element_nll(residual, log_scale))

    def element_nll(self, residual: Tensor, log_scale: Tensor) -> Tensor:  # pragma: no cover - abstract
        """-log p of each element given the residual and log s (broadcastable); same shape as residual."""
        raise NotImplementedError

    def log_ml_scale(self, residual: Tensor) -> Tensor:  # pragma: no cover - abstract
        """log of the maximum-likelihood scale of the residuals (0-dim, differentiable)."""
        raise NotImplementedError

    def calibrate(self, residual: Tensor) -> Tensor:
        """Maximum-likelihood scale of the residuals (no floor), e.g. sqrt(mean r^2) for the Gaussian."""
        return self.log_ml_scale(residual).exp()

    def hold_scale(self, value: float | None) -> None:
        self.scale.hold_epoch(value)

    def observed_scale(self) -> float | None:
        return self.scale.observed_mean()

    def learned(self) -> dict[str, float]:
        value = self.scale.learned_value()
        return {} if value is None else {"learned_scale": value}
