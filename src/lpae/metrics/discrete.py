"""Likelihoods of quantized data: the NLL of the bins, for a run's own criterion and for the yardstick.

On a feature stored on a lattice (lpae.data.quantization) a value stands for its bin, and its
likelihood is the probability of the bin under the decoder's distribution,
P = F((x + upper - mu) / s) - F((x + lower - mu) / s) with F the family's CDF
(lpae.criteria.discrete; the edge bins take the tails, PixelCNN++'s discretized likelihood).
Then -log P >= 0, so no scale can win by collapsing onto the lattice: a continuous density on
lattice data grows without bound as the scale shrinks (Theis, van den Oord & Bethge 2016).
Continuous features keep their densities.

- :func:`own_sample_nll`: the run's own criterion, for the families with a CDF (gaussian,
  laplace, gennorm, student_t: :data:`lpae.criteria.discrete.LOG_CDF_LEFT`), every scale mode;
  a ``scale=calibrated`` criterion gets the scale that maximises the likelihood of the split's
  bins (bounded Brent on log s, on a seeded subsample of at most DISCRETE_FIT_ELEMENTS
  elements), not the continuous ML scale, which a spike can drive to 0.
  Criteria without a CDF (cbernoulli, beta, barron_nll) return None: their densities stay.
- :func:`gennorm_yardstick`: the calibrated generalized normal of ``nll_gennorm_bpd`` with shape
  p and scale alpha both fitted by maximising the discrete likelihood (Nelder-Mead on
  (log p, log alpha) from the two best of three starts: the continuous fit, alpha raised to the
  median bin width at that p and at p = 2; on a seeded subsample of at most
  DISCRETE_FIT_ELEMENTS elements), then the NLL of every element at that fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import minimize, minimize_scalar

from lpae.criteria import Criterion
from lpae.criteria.discrete import LOG_CDF_LEFT, element_nll
from lpae.criteria.gennorm import GenNorm
from lpae.criteria.likelihood import LocationScale
from lpae.criteria.power_family import log_normaliser
from lpae.criteria.student_t import StudentTNLL

DISCRETE_FIT_ELEMENTS = 10_000
P_RANGE = (0.05, 20.0)
LOG_SCALE_REACH = 12.0  # Brent searches log s within this many nats around its starting bracket
SUBSAMPLE_SEED = 0
OUT_OF_RANGE = 1e12  # the objective outside the shape range (finite, so Nelder-Mead can compare)


def family_of(criterion: Criterion) -> tuple[str, float | None] | None:
    """(family, shape) of a criterion with a CDF in lpae.criteria.discrete, else None."""
    if not isinstance(criterion, LocationScale) or criterion.name not in LOG_CDF_LEFT:
        return None
    shape: float | None = None
    if isinstance(criterion, GenNorm):
        shape = float(criterion.power())
    elif isinstance(criterion, StudentTNLL):
        shape = float(criterion.shape())
    return criterion.name, shape


def mixed_nll(
    discrete: Callable[[np.ndarray], np.ndarray], density: np.ndarray, quantized: np.ndarray
) -> np.ndarray:
    """Element NLLs: the bins' where quantized, the density elsewhere."""
    found = density.copy()
    if quantized.any():
        found[quantized] = discrete(quantized)
    return found


@torch.no_grad()
def own_sample_nll(
    criterion: Criterion, x: torch.Tensor, out: torch.Tensor, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray | None:
    """Per-sample NLL (N,) in nats of x under the criterion's decoder distribution, bins on the
    quantized elements (``lower`` < ``upper``, offsets from x), densities elsewhere; None for a
    criterion without a CDF."""
    found = family_of(criterion)
    if found is None or not isinstance(criterion, LocationScale):
        return None
    family, shape = found
    x64 = x.to(torch.float64)
    location, raw_scale = criterion.split(x, out)
    residual = location.to(torch.float64) - x64  # (N, ...)
    r = residual.numpy()
    quantized = upper > lower

    def nll_at(log_scale: torch.Tensor) -> np.ndarray:
        density = criterion.element_nll(residual, log_scale).to(torch.float64).numpy()
        log_s = np.broadcast_to(log_scale.numpy(), r.shape)
        return mixed_nll(
            lambda m: element_nll(family, r[m], log_s[m], lower[m], upper[m], shape), density, quantized
        )

    if criterion.scale.mode == "calibrated":  # one scale: fitted on a seeded subsample of elements
        start = float(criterion.log_ml_scale(residual))
        widths = (upper - lower)[quantized & np.isfinite(upper - lower)]
        widest = math.log(float(widths.max())) if widths.size else start
        pick = fit_elements(r.size)
        fit_r, fit_low, fit_high = (a.reshape(-1)[pick] for a in (r, lower, upper))
        fit_residual = torch.from_numpy(fit_r)

        def fit_nll(v: float) -> float:
            log_s = torch.tensor(v, dtype=torch.float64)
            density = criterion.element_nll(fit_residual, log_s).to(torch.float64).numpy()
            return float(
                mixed_nll(
                    lambda m: element_nll(family, fit_r[m], v, fit_low[m], fit_high[m], shape),
                    density,
                    fit_high > fit_low,
                ).mean()
            )

        best = minimize_scalar(
            fit_nll,
            bounds=(min(start, widest) - LOG_SCALE_REACH, max(start, widest) + LOG_SCALE_REACH),
            method="bounded",
            options={"xatol": 1e-7},
        )
        log_scale = torch.tensor(float(best.x), dtype=torch.float64)
    else:
        raw = None if raw_scale is None else raw_scale.to(torch.float64)
        log_scale = criterion.scale.log_scale(residual, raw, criterion.log_ml_scale).to(torch.float64)
    elements = nll_at(log_scale)
    return elements.reshape(len(elements), -1).sum(axis=1)


def fit_elements(size: int) -> np.ndarray:
    """Indices of at most DISCRETE_FIT_ELEMENTS of ``size`` flat elements, seeded, sorted."""
    if size <= DISCRETE_FIT_ELEMENTS:
        return np.arange(size)
    return np.sort(np.random.default_rng(SUBSAMPLE_SEED).choice(size, DISCRETE_FIT_ELEMENTS, replace=False))


def gennorm_density(residual: np.ndarray, p: float, log_alpha: float) -> np.ndarray:
    """Generalized-normal element NLL (|r| / alpha)^p + log alpha + log 2 + lgamma(1/p) - log p."""
    return np.abs(residual / math.exp(log_alpha)) ** p + log_alpha + float(log_normaliser(p))


def gennorm_elements(
    residual: np.ndarray, lower: np.ndarray, upper: np.ndarray, p: float, log_alpha: float
) -> np.ndarray:
    """Element NLLs of the yardstick (location x_hat, scale alpha, shape p) on flat arrays."""
    quantized = upper > lower
    density = gennorm_density(residual, p, log_alpha)
    return mixed_nll(
        lambda m: element_nll("gennorm", residual[m], log_alpha, lower[m], upper[m], p), density, quantized
    )


def gennorm_yardstick(
    residual: np.ndarray, lower: np.ndarray, upper: np.ndarray, p_start: float, alpha_start: float
) -> tuple[float, float, float]:
    """(p, alpha, mean NLL per element in nats) of the discrete-ML generalized normal (module
    docstring), residuals r = x_hat - x with bin offsets from x, all flattened alike."""
    r, low, high = (np.asarray(a, np.float64).reshape(-1) for a in (residual, lower, upper))
    rows = fit_elements(r.size)
    fit_r, fit_low, fit_high = r[rows], low[rows], high[rows]

    def objective(theta: np.ndarray) -> float:
        p = math.exp(float(theta[0]))
        if not P_RANGE[0] <= p <= P_RANGE[1]:
            return OUT_OF_RANGE
        value = float(gennorm_elements(fit_r, fit_low, fit_high, p, float(theta[1])).mean())
        return value if math.isfinite(value) else OUT_OF_RANGE

    widths = (fit_high - fit_low)[np.isfinite(fit_high - fit_low) & (fit_high > fit_low)]
    starts = [(p_start, alpha_start)]
    if widths.size:
        starts.append((p_start, max(alpha_start, float(np.median(widths)))))
        starts.append((2.0, max(alpha_start, float(np.median(widths)))))
    points = sorted((np.array([math.log(p0), math.log(a0)]) for p0, a0 in starts), key=objective)
    fits = [
        minimize(objective, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-8})
        for start in points[:2]  # from the two best starts
    ]
    best = min(fits, key=lambda found: float(found.fun))
    p, log_alpha = math.exp(float(best.x[0])), float(best.x[1])
    nll = float(gennorm_elements(r, low, high, p, log_alpha).mean())
    return p, math.exp(log_alpha), nll
