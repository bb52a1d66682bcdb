"""A common yardstick: the NLL of residuals under a likelihood family at its maximum-likelihood scale.

Models trained with different losses cannot be compared by their own training losses. Every
L_p loss is the generalized-normal NLL of shape p at some fixed scale, so any model can be
scored by the NLL of its test residuals under one family, with the scale (and for gennorm the
shape) set to their maximum-likelihood values for those residuals. ``calibrated_nll(residual,
family)`` returns that NLL as a mean per element in nats, and in bits per dimension
(nats / log 2). Both are densities of the residuals in the space they are given in: add the
log-Jacobian of any preprocessing to compare across preprocessings.

Families (spec strings):

- ``gaussian``: sigma^2 = mean r^2; NLL = 0.5 log(2 pi sigma^2) + 0.5.
- ``laplace``: b = mean |r|; NLL = log(2 b) + 1.
- ``gennorm`` (shape fitted) or ``gennorm:p=P``: alpha = (p mean|r|^p)^(1/p);
  NLL(p) = log(2 alpha) + lgamma(1/p) - log p + 1/p. The fit minimises this profile over
  p in [0.05, 20] (a log-spaced grid, then bounded Brent around the best point): the exact
  1-D maximum-likelihood fit, agreeing with scipy.stats.gennorm.fit(r, floc=0).
- ``student_t:df=F`` and ``barron_nll:alpha=A``: scale by solving the score equation
  (lpae.criteria.implicit_scale), NLL from the criterion's own element NLL.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import Tensor

from lpae.criteria.base import build
from lpae.criteria.likelihood import LocationScale
from lpae.spec import Number, Param, Registry, format_number

P_FIT_RANGE = (0.05, 20.0)
P_FIT_GRID = 49


@dataclass(frozen=True)
class CalibratedNLL:
    """Mean NLL per element of residuals under ``family`` at its ML scale (and fitted shape)."""

    family: str  # the family with the shape used, e.g. "gennorm:p=1.3721..."
    scale: float  # the family's own scale: sigma, b, alpha, s or c
    shape: float | None  # p (gennorm), df (student_t), alpha (barron_nll); None otherwise
    nll: float  # nats per element
    n_elements: int

    @property
    def bits_per_dim(self) -> float:
        return self.nll / math.log(2.0)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "bits_per_dim": self.bits_per_dim}


def as_residual(residual: Tensor | np.ndarray) -> Tensor:
    """All residuals as one float64 row (1, N), checked finite and not all zero."""
    values = torch.as_tensor(np.asarray(residual) if not isinstance(residual, Tensor) else residual)
    values = values.detach().to(torch.float64).reshape(1, -1)
    if values.numel() == 0:
        raise ValueError("calibrated_nll: no residuals given")
    if not bool(torch.isfinite(values).all()):
        raise ValueError("calibrated_nll: residuals contain nan or inf")
    if not bool((values != 0).any()):
        raise ValueError("calibrated_nll: every residual is 0, so the ML scale is 0 and the NLL is -inf")
    return values


def score_with_criterion(residual: Tensor, family: str, shape: float | None = None) -> CalibratedNLL:
    """NLL at the ML scale through the family's criterion (its element NLL and its ML scale)."""
    criterion = build(family + (",scale=calibrated" if ":" in family else ":scale=calibrated"))
    if not isinstance(criterion, LocationScale):  # pragma: no cover - FAMILIES holds only these
        raise TypeError(f"{family} is not a location-scale family")
    with torch.no_grad():
        log_scale = criterion.log_ml_scale(residual)
        if not bool(torch.isfinite(log_scale)):
            raise ValueError(f"calibrated_nll: {family} has no finite ML scale for these residuals")
        nll = float(criterion.element_nll(residual, log_scale).mean())
    return CalibratedNLL(family, math.exp(float(log_scale)), shape, nll, residual.numel())


def gennorm_profile(log_abs: Tensor, p: float) -> float:
    """Mean NLL at the ML scale for shape p, from log|r| (N,): log(2 a) + lgamma(1/p) - log p + 1/p."""
    mean_power = float(torch.exp(p * log_abs).mean())
    log_alpha = (math.log(p) + math.log(mean_power)) / p
    return math.log(2.0) + log_alpha + math.lgamma(1.0 / p) - math.log(p) + 1.0 / p


def fit_gennorm(residual: Tensor) -> CalibratedNLL:
    """The 1-D ML fit of p with the scale profiled out (see the module docstring)."""
    log_abs = residual.abs().log().flatten()  # (N,) -inf where r = 0: contributes exp(-inf) = 0
    grid = np.geomspace(*P_FIT_RANGE, P_FIT_GRID)
    profile = [gennorm_profile(log_abs, float(p)) for p in grid]
    best = int(np.argmin(profile))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    found = minimize_scalar(
        lambda log_p: gennorm_profile(log_abs, math.exp(log_p)),
        bounds=(math.log(low), math.log(high)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    p = math.exp(float(found.x))
    if gennorm_profile(log_abs, float(grid[best])) < gennorm_profile(log_abs, p):
        p = float(grid[best])  # a bound of the range is the optimum
    return score_with_criterion(residual, f"gennorm:p={format_number(p)}", p)


def gaussian(residual: Tensor) -> CalibratedNLL:
    return score_with_criterion(residual, "gaussian")


def laplace(residual: Tensor) -> CalibratedNLL:
    return score_with_criterion(residual, "laplace")


def gennorm(residual: Tensor, p: float | str = "fit") -> CalibratedNLL:
    if p == "fit":
        return fit_gennorm(residual)
    return score_with_criterion(residual, f"gennorm:p={format_number(float(p))}", float(p))


def student_t(residual: Tensor, df: float) -> CalibratedNLL:
    return score_with_criterion(residual, f"student_t:df={format_number(float(df))}", float(df))


def barron_nll(residual: Tensor, alpha: float) -> CalibratedNLL:
    return score_with_criterion(residual, f"barron_nll:alpha={format_number(float(alpha))}", float(alpha))


FAMILIES: Registry[CalibratedNLL] = Registry("calibrated_nll family")
FAMILIES.register("gaussian", gaussian, summary="sigma^2 = mean r^2")
FAMILIES.register("laplace", laplace, summary="b = mean |r|")
FAMILIES.register(
    "gennorm",
    gennorm,
    [Param("p", Number(low=0, keywords=("fit",)), "fit", help="shape, or fit it by ML")],
    summary="alpha = (p mean|r|^p)^(1/p), p fitted by default",
)
FAMILIES.register("student_t", student_t, [Param("df", Number(low=0))], summary="scale by Brent")
FAMILIES.register(
    "barron_nll", barron_nll, [Param("alpha", Number(low=0, low_open=False))], summary="scale by Brent"
)


def calibrated_nll(residual: Tensor | np.ndarray, family: str = "gennorm") -> CalibratedNLL:
    """Mean NLL per element (nats; ``.bits_per_dim`` too) of ``residual`` under ``family`` at its
    maximum-likelihood scale and, for ``gennorm``, fitted shape. See the module docstring."""
    return FAMILIES.build(family, residual=as_residual(residual))
