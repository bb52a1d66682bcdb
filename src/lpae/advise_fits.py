"""The family fits behind ``lpae advise`` on quantized data: bin likelihoods, not densities.

On quantized features (lpae.data.quantization) a continuous density rewards residuals that sit
on the lattice with a collapsing scale (Theis, van den Oord & Bethge 2016): on digits the pooled
fit read p = 0.49 and advise recommended lp:0.5, whose own model was the worst on RMSE and probe
accuracy. So there each family is scored by the probability of each held-out value's bin
(lpae.criteria.discrete, the edge bins taking the tails), at the scale that maximises it:

- gaussian, laplace: scale by bounded Brent on log s;
- gennorm: shape p and scale alpha together by the discrete fit of the yardstick
  (lpae.metrics.discrete.gennorm_yardstick, the ``nll_gennorm_bpd`` of ``lpae eval``);
- student_t: df from the per-feature scaled residual fit (lpae.metrics.residual_shape), scale by
  Brent.

Continuous features keep their densities. Returns the same structures as the continuous path of
lpae.advise (CalibratedNLL per family and per-row NLLs per element).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from lpae.criteria import CalibratedNLL, build
from lpae.criteria.discrete import element_nll
from lpae.criteria.likelihood import LocationScale
from lpae.data import Quantization
from lpae.metrics.discrete import gennorm_yardstick
from lpae.spec import format_number

LOG_SCALE_REACH = 12.0


def flat_quantization(quantization: Quantization | None) -> Quantization | None:
    """The lattice of samples flattened to (D,), as advise reads them."""
    if quantization is None:
        return None
    return Quantization(
        quantization.step.reshape(-1), quantization.low.reshape(-1), quantization.high.reshape(-1)
    )


def element_table(
    family: str,
    residual: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    log_scale: float,
    shape: float | None,
) -> np.ndarray:
    """Element NLLs (N, D): bins where quantized, the family's density elsewhere."""
    spec = (
        family if shape is None else f"{family}:{'p' if family == 'gennorm' else 'df'}={format_number(shape)}"
    )
    criterion = build(spec)
    if not isinstance(criterion, LocationScale):  # pragma: no cover - the four families are
        raise TypeError(f"{spec} is not a location-scale family")
    with torch.no_grad():
        found = (
            criterion.element_nll(torch.from_numpy(residual), torch.tensor(log_scale, dtype=torch.float64))
            .to(torch.float64)
            .numpy()
            .copy()
        )
    quantized = upper > lower
    if quantized.any():
        found[quantized] = element_nll(
            family, residual[quantized], log_scale, lower[quantized], upper[quantized], shape
        )
    return found


def scale_fit(
    family: str, residual: np.ndarray, lower: np.ndarray, upper: np.ndarray, shape: float | None
) -> tuple[float, np.ndarray]:
    """(scale, element NLLs) at the scale that maximises the likelihood (bounded Brent on log s)."""
    magnitude = float(np.log(np.mean(np.abs(residual)) or 1.0))
    widths = (upper - lower)[np.isfinite(upper - lower) & (upper > lower)]
    widest = math.log(float(widths.max())) if widths.size else magnitude
    best = minimize_scalar(
        lambda v: float(element_table(family, residual, lower, upper, v, shape).mean()),
        bounds=(min(magnitude, widest) - LOG_SCALE_REACH, max(magnitude, widest) + LOG_SCALE_REACH),
        method="bounded",
        options={"xatol": 1e-6},
    )
    log_scale = float(best.x)
    return math.exp(log_scale), element_table(family, residual, lower, upper, log_scale, shape)


def discrete_fits(
    residual: np.ndarray, bins: tuple[np.ndarray, np.ndarray], p_start: float, alpha_start: float, df: float
) -> tuple[dict[str, CalibratedNLL], dict[str, np.ndarray], float]:
    """(fits, per-row NLL per element, fitted gennorm p) of residuals (N, D) (module docstring)."""
    lower, upper = bins
    fits: dict[str, CalibratedNLL] = {}
    rows: dict[str, np.ndarray] = {}
    p, alpha, _ = gennorm_yardstick(residual, lower, upper, p_start, alpha_start)
    for family, shape in (("gaussian", None), ("laplace", None), ("gennorm", p), ("student_t", df)):
        if family == "gennorm":
            scale, table = alpha, element_table(family, residual, lower, upper, math.log(alpha), p)
        else:
            scale, table = scale_fit(family, residual, lower, upper, shape)
        name = (
            family
            if shape is None
            else f"{family}:{'p' if family == 'gennorm' else 'df'}={format_number(shape)}"
        )
        fits[family] = CalibratedNLL(name, scale, shape, float(table.mean()), int(table.size))
        rows[family] = table.mean(axis=1)
    return fits, rows, p
