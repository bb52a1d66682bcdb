"""Likelihood metrics: NLL in bits per dimension, the residuals' own shape, and VAE bounds.

Bits per dimension: bpd = nats / (D ln 2), the mean NLL per sample in nats divided by the number
D of elements of a sample (equivalently the mean NLL per element over ln 2). All bpd here are
densities of the *preprocessed* data (the space the model sees: standardised, or min-max scaled
into (0, 1) for unit-interval families); to compare across preprocessings add the mean
log-Jacobian of the preprocessing per element, over ln 2.

- ``nll_own_bpd``: the run's own criterion on the test split, as trained (learned or predicted
  scale and shape as learned; ``scale=calibrated`` calibrated once over the whole test split).
  Only for normalised likelihoods (``criterion.is_likelihood``); plain losses are energies
  without a normalising constant and get no key. For a VAE it is the decoder NLL at the
  posterior mean (``elbo`` / ``iwae`` are its proper bounds).
- ``nll_gennorm_bpd``: every run's test residuals r = x_hat - x under one generalized normal
  (lpae.criteria.calibrated_nll) with fitted shape p and maximum-likelihood scale
  alpha = (p mean|r|^p)^(1/p), so runs trained with any loss are comparable. The shape is
  fitted on a seeded subsample of at most GENNORM_FIT_ELEMENTS residual elements, and the scale
  and the NLL then use every test residual at that shape. The NLL is flat at its minimum in p,
  so the subsample's p costs next to nothing: on the MNIST run of bench/eval.py (7.8 million
  residuals) the result was 1.5e-5 bpd above the full fit (0.68565 vs 0.68564 bpd, p = 0.564
  vs 0.568), in a third of the time (the full fit took 15-19 s there). ``nll_gennorm_p`` and
  ``nll_gennorm_scale`` report p and alpha.
- ``residual_gennorm_p``, ``residual_t_df``: scipy.stats.gennorm.fit and scipy.stats.t.fit with
  loc fixed at 0 on a seeded subsample of at most SHAPE_FIT_ELEMENTS residual elements (t.fit is
  a numerical optimisation, about 0.3 s per 20,000 values): a hint of which loss the data want
  (p near 2: L2, near 1: L1; small df: heavy tails, a robust loss).
- ``elbo``, ``iwae``: for a VAE with a normalised likelihood, the test means of the per-sample
  ELBO (one posterior sample) and IWAE_k bound (k = IWAE_SAMPLES, Burda et al. 2016) on
  log p(x), nats per sample (lpae.models.VariationalAutoencoder).

Keys are absent where they cannot be computed: every residual exactly 0 (a perfect
reconstruction has no finite calibrated NLL and no shape to fit).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from scipy import stats

from lpae.criteria import Criterion, build, calibrated_nll
from lpae.metrics.registry import CROSS_METRIC, LIKELIHOOD, RESIDUAL_FIT, Metric, declare
from lpae.models import VariationalAutoencoder
from lpae.spec import format_number

GENNORM_FIT_ELEMENTS = 100_000
SHAPE_FIT_ELEMENTS = 20_000
IWAE_SAMPLES = 64
SUBSAMPLE_SEED = 0
BPD, NATS = "bits/dim", "nats/sample"
FITS = (RESIDUAL_FIT,)

declare(
    Metric(
        "nll_gennorm_bpd",
        "calibrated generalized-normal NLL (bits/dim)",
        BPD,
        "lower",
        (CROSS_METRIC, LIKELIHOOD),
    ),
    Metric("nll_own_bpd", "NLL under the run's own likelihood (bits/dim)", BPD, "lower", (LIKELIHOOD,)),
    Metric("elbo", "ELBO (nats per sample)", NATS, "higher", (LIKELIHOOD,)),
    Metric("iwae", "IWAE bound (nats per sample)", NATS, "higher", (LIKELIHOOD,)),
    Metric("residual_gennorm_p", "generalized-normal shape of the test residuals", groups=FITS),
    Metric("residual_t_df", "Student-t degrees of freedom of the test residuals", groups=FITS),
    # the ML shape behind nll_gennorm_bpd (every residual element of a run, subsampled)
    Metric("nll_gennorm_p", "shape p of the calibrated generalized normal", groups=FITS),
    Metric("nll_gennorm_scale", "scale alpha of the calibrated generalized normal", "preprocessed units"),
)


def bits_per_dim(nats_per_sample: float, n_features: int) -> float:
    """nats / (D ln 2)."""
    return nats_per_sample / (n_features * math.log(2.0))


def subsample(values: np.ndarray, size: int, seed: int = SUBSAMPLE_SEED) -> np.ndarray:
    """At most ``size`` elements of ``values`` (flattened), drawn without replacement, seeded."""
    flat = np.asarray(values).reshape(-1)
    if flat.size <= size:
        return flat
    rows = np.random.default_rng(seed).choice(flat.size, size=size, replace=False)
    return flat[np.sort(rows)]


@torch.no_grad()
def own_nll_bpd(criterion: Criterion, x: torch.Tensor, out: torch.Tensor) -> dict[str, float]:
    """nll_own_bpd of decoder outputs ``out`` for data x (whole test split at once); {} for plain losses."""
    if not criterion.is_likelihood:
        return {}
    nll = criterion(x, out).to(torch.float64)  # (N,) nats per sample
    n_features = int(np.prod(x.shape[1:]))
    return {"nll_own_bpd": bits_per_dim(float(nll.mean()), n_features)}


def fit_gennorm_shape(residual: np.ndarray) -> float:
    """ML shape p of a zero-location generalized normal, fitted on a subsample of the residuals."""
    shape = calibrated_nll(subsample(residual, GENNORM_FIT_ELEMENTS), "gennorm").shape
    return math.nan if shape is None else float(shape)


def gennorm_nll(residual: np.ndarray) -> dict[str, float]:
    """nll_gennorm_bpd, nll_gennorm_p and nll_gennorm_scale of residuals (N, ...) (module docstring)."""
    flat = np.asarray(residual, dtype=np.float64).reshape(-1)
    if not flat.any():
        return {}
    p = fit_gennorm_shape(flat)
    score = calibrated_nll(flat, f"gennorm:p={format_number(p)}")
    return {"nll_gennorm_bpd": score.bits_per_dim, "nll_gennorm_p": p, "nll_gennorm_scale": score.scale}


@torch.no_grad()
def gennorm_sample_nll(fit_residual: np.ndarray, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per-sample NLL (N,) of x given x_hat under the generalized normal whose shape and scale are
    fitted (calibrated) on ``fit_residual``, e.g. the validation residuals."""
    flat = np.asarray(fit_residual, dtype=np.float64).reshape(-1)
    p = fit_gennorm_shape(flat)
    alpha = calibrated_nll(flat, f"gennorm:p={format_number(p)}").scale
    criterion = build(f"gennorm:p={format_number(p)},scale={format_number(alpha)}")
    return criterion(x.to(torch.float64), x_hat.to(torch.float64))


def residual_shape(residual: np.ndarray) -> dict[str, float]:
    """residual_gennorm_p and residual_t_df: scipy fits with loc = 0 on a subsample (module docstring)."""
    sample = subsample(np.asarray(residual, dtype=np.float64), SHAPE_FIT_ELEMENTS)
    if not sample.any():
        return {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # the optimisers probe extreme shapes
        p = stats.gennorm.fit(sample, floc=0)[0]
        df = stats.t.fit(sample, floc=0)[0]
    return {"residual_gennorm_p": float(p), "residual_t_df": float(df)}


@torch.no_grad()
def vae_bounds(
    model: VariationalAutoencoder, x: torch.Tensor, seed: int = 0, k: int = IWAE_SAMPLES
) -> dict[str, float]:
    """Mean ELBO (one sample per row) and IWAE_k over the rows of x, in nats per sample."""
    noise = torch.Generator(device=x.device).manual_seed(seed)
    rows = max(1, 8192 // k)  # rows per chunk: the IWAE decodes k * rows samples at once
    elbo = iwae = 0.0
    for start in range(0, len(x), rows):
        xb = x[start : start + rows]
        elbo += float(model.elbo(xb, noise=noise).sum(dtype=torch.float64))
        iwae += float(model.iwae(xb, k, noise=noise).sum(dtype=torch.float64))
    return {"elbo": elbo / len(x), "iwae": iwae / len(x)}
