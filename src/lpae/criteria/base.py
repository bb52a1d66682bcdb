"""The Criterion contract and the registry every criterion family registers into.

A criterion turns (x, decoder output) into a per-sample loss. It is an ``nn.Module`` so that
learned scale or shape parameters train with the model (../shared/DESIGN.md).

- ``n_outputs``: decoder channels per input feature (1 = location; 2 = location and scale).
  With ``n_outputs = k > 1`` the decoder output holds the k channels stacked along dim 1:
  ``out`` has shape (B, k * C, ...) for x of shape (B, C, ...), split with ``out.chunk(k, 1)``.
- ``forward(x, out) -> (B,)``: the objective per sample, summed over every non-batch dim.
  For likelihoods this is the NLL in nats including normalising constants.
- ``reconstruct(out)``: the point reconstruction (the mean where the family has one).
- ``is_likelihood``: True when ``forward`` is a normalised NLL.
- ``support``: "real" or "unit" (the open interval (0, 1)); preprocessing follows it.
- ``calibrate(residual)``: closed-form maximum-likelihood scale given residuals.
- ``str(criterion)`` is its canonical spec; ``build(str(c))`` gives an equal criterion.
- ``learned()``: learned parameters for metrics.json, keys ``learned_p``, ``learned_df``,
  ``learned_alpha``, ``learned_scale`` (means over features) where the criterion has them.

Factories are called as ``factory(**spec_values, feature_shape=shape)``: ``feature_shape`` (the
shape of one sample, or None when unknown) sizes per-feature parameters; families without such
parameters ignore it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lpae.spec import Registry

CRITERIA: Registry[Criterion] = Registry("criterion")


def per_sample(elementwise: Tensor) -> Tensor:
    """Sum an element-wise loss over every non-batch dimension: (B, ...) -> (B,)."""
    return elementwise.reshape(elementwise.shape[0], -1).sum(dim=1)


class Criterion(nn.Module):
    """Base class of every reconstruction criterion (see the module docstring)."""

    name: ClassVar[str] = ""
    n_outputs: int = 1
    is_likelihood: ClassVar[bool] = False
    support: ClassVar[str] = "real"

    def __init__(self, **spec_values: Any) -> None:
        super().__init__()
        # Resolved spec parameters, kept for the canonical spec string and config.json.
        self.spec_values = dict(spec_values)

    def forward(self, x: Tensor, out: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def reconstruct(self, out: Tensor) -> Tensor:
        """Point reconstruction from the decoder output (the location channel by default)."""
        return out if self.n_outputs == 1 else out.chunk(self.n_outputs, dim=1)[0]

    def calibrate(self, residual: Tensor) -> Tensor:
        """Maximum-likelihood scale for the given residuals (families with a scale override it)."""
        raise NotImplementedError(f"{self} has no scale to calibrate")

    def learned(self) -> dict[str, float]:
        """Learned shape and scale parameters, as plain numbers (mean over features)."""
        return {}

    def check_support(self, x: Tensor) -> None:
        """Raise ValueError when data lie outside the family's support."""
        if self.support == "unit" and x.numel() and bool(((x <= 0) | (x >= 1)).any()):
            raise ValueError(
                f"{self} needs data in the open interval (0, 1); got values in "
                f"[{float(x.min()):.4g}, {float(x.max()):.4g}] (use --preprocess minmax)"
            )

    def __str__(self) -> str:
        return CRITERIA.canonical(self.name, self.spec_values)

    def extra_repr(self) -> str:
        return str(self)


def check_pair(criterion: Criterion, x: Tensor, out: Tensor) -> None:
    """Raise ValueError unless ``out`` has ``n_outputs`` channels per channel of ``x`` (dim 1)."""
    k = criterion.n_outputs
    expected = (x.shape[0], k * x.shape[1], *x.shape[2:]) if x.dim() >= 2 else None
    if expected is None or tuple(out.shape) != expected:
        raise ValueError(
            f"{criterion}: decoder output of shape {tuple(out.shape)} does not fit data of shape "
            f"{tuple(x.shape)}; expected (batch, {k} x channels, ...) = {expected} "
            f"(data must be at least 2-D: (batch, features, ...))"
        )


class ElementwiseLoss(Criterion):
    """A plain loss rho(r) of the residual r = out - x, summed over features (not normalised)."""

    def elementwise(self, residual: Tensor) -> Tensor:  # pragma: no cover - abstract
        """rho(r) element by element, same shape as ``residual``."""
        raise NotImplementedError

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        check_pair(self, x, out)
        return per_sample(self.elementwise(out - x))


def build(spec: str, **context: Any) -> Criterion:
    """Build a criterion from its spec string, e.g. ``build("gennorm:p=learned")``."""
    return CRITERIA.build(spec, **context)


def available() -> list[str]:
    """Registered criterion names (aliases not included)."""
    return CRITERIA.names()


def normalize(spec: str) -> str:
    """Canonical form of a criterion spec."""
    return CRITERIA.normalize(spec)


def as_float(value: float | Tensor) -> float:
    return float(value.detach().mean()) if isinstance(value, Tensor) else float(value)


def positive_floor(raw: Tensor, floor: float) -> Tensor:
    """softplus(raw) + floor: an unconstrained parameter mapped to (floor, inf)."""
    return torch.nn.functional.softplus(raw) + floor
