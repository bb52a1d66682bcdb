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
  ``nll_gennorm_scale`` report p and alpha. This yardstick keeps one scale for all features on
  purpose (it is the NLL of one shared-scale density, as a shared-scale criterion is trained),
  so its p is the ML shape of that density and also absorbs differences in scale between
  features: it is not the shape of the noise (residual_gennorm_p is).
- ``residual_gennorm_p``, ``residual_t_df``: the shape of the noise. Each feature's residuals are
  first divided by that feature's own scale, the median of |r_ij| over the test rows i (the mean
  |r_ij| where the median is 0; all-zero features are left out): after per-feature
  standardisation the same noise has a different scale in every feature, and pooling such
  features makes any noise look heavy-tailed (a scale mixture: Gaussian noise in features of
  scales spread over a factor 25 reads p = 0.74, df = 1.9 pooled, p = 2.0 scaled). The median
  is consistent for every family and exists for Student-t of any df. Then scipy.stats.gennorm.fit
  and scipy.stats.t.fit with loc fixed at 0 on a seeded subsample of at most SHAPE_FIT_ELEMENTS
  scaled elements (t.fit is a numerical optimisation, about 0.3 s per 20,000 values): a hint of
  which loss the data want (p near 2: L2, near 1: L1; small df: heavy tails, a robust loss), and
  of whether a per-feature scale (``scale=learned_per_feature``) would help, when nll_gennorm_p
  is well below residual_gennorm_p. With fewer than about 100 test rows the per-feature medians
  are noisy and the fitted shapes read slightly heavier-tailed than the noise (Gaussian noise
  reads p = 1.9 from 50 rows).
- ``elbo``, ``iwae``: for a VAE with a normalised likelihood, the test means of the per-sample
  ELBO (one posterior sample) and IWAE_k bound (k = IWAE_SAMPLES, Burda et al. 2016) on
  log p(x), nats per sample (lpae.models.VariationalAutoencoder). Properties of the model, not
  of the batching: each row's draws come from a generator seeded by its block of the split
  (posterior_noise), and a ``scale=calibrated`` decoder gets one scale per evaluated split, the
  ML scale of the residuals of the ELBO's own sampled reconstructions over the whole split
  (split_scale), held fixed while the chunks are scored. Refitting it per chunk, as before,
  made the bound depend on the chunk size (and jointly over the k importance samples, on k).

Quantized data (lpae.data.quantization; the run's lattice in the model's space is in its
config.json): ``nll_own_bpd`` and ``nll_gennorm_bpd`` score each quantized value's bin,
P = F(upper) - F(lower), instead of the density at the value, with the yardstick's p and alpha
(and a calibrated own scale) fitted by maximising that likelihood (lpae.metrics.discrete), so a
scale collapsing onto the lattice cannot win (Theis et al. 2016); ``nll_quantized_fraction`` is
the share of elements scored so. Own criteria without a CDF (cbernoulli, beta, barron_nll), the
VAE bounds and the shape fits keep densities.

Keys are absent where they cannot be computed: every residual exactly 0 (a perfect
reconstruction has no finite calibrated NLL and no shape to fit).
"""

from __future__ import annotations

import math
import warnings
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch
from scipy import stats

from lpae.criteria import Criterion, build, calibrated_nll
from lpae.criteria.likelihood import LocationScale
from lpae.criteria.scale import soft_floor
from lpae.metrics.discrete import gennorm_yardstick, own_sample_nll
from lpae.metrics.registry import CROSS_METRIC, LIKELIHOOD, RESIDUAL_FIT, Metric, declare
from lpae.models import VariationalAutoencoder
from lpae.spec import format_number

GENNORM_FIT_ELEMENTS = 100_000
SHAPE_FIT_ELEMENTS = 20_000
IWAE_SAMPLES = 64
NOISE_BLOCK_ROWS = 64  # rows of a split that share one seeded generator (posterior_noise)
SUBSAMPLE_SEED = 0
BPD, NATS = "bits/dim", "nats/sample"
FITS = (RESIDUAL_FIT,)
Bins = tuple[np.ndarray, np.ndarray]  # (lower, upper) offsets of each element's bin from x

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
    Metric("nll_quantized_fraction", "share of the test elements scored as bin probabilities (quantized)"),
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
def own_nll_bpd(
    criterion: Criterion, x: torch.Tensor, out: torch.Tensor, bins: Bins | None = None
) -> dict[str, float]:
    """nll_own_bpd of decoder outputs ``out`` for data x (whole test split at once); {} for plain
    losses. ``bins`` (lower, upper offsets from x, lpae.data.Quantization.bin_offsets): the
    quantized elements are scored as bins where the family has a CDF (lpae.metrics.discrete)."""
    if not criterion.is_likelihood:
        return {}
    n_features = int(np.prod(x.shape[1:]))
    discrete = None if bins is None else own_sample_nll(criterion, x, out, *bins)
    if discrete is not None:
        return {"nll_own_bpd": bits_per_dim(float(discrete.mean()), n_features)}
    nll = criterion(x, out).to(torch.float64)  # (N,) nats per sample
    return {"nll_own_bpd": bits_per_dim(float(nll.mean()), n_features)}


def fit_gennorm_shape(residual: np.ndarray) -> float:
    """ML shape p of a zero-location generalized normal, fitted on a subsample of the residuals."""
    shape = calibrated_nll(subsample(residual, GENNORM_FIT_ELEMENTS), "gennorm").shape
    return math.nan if shape is None else float(shape)


def gennorm_nll(residual: np.ndarray, bins: Bins | None = None) -> dict[str, float]:
    """nll_gennorm_bpd, nll_gennorm_p and nll_gennorm_scale of residuals (N, ...) (module
    docstring); with ``bins`` on quantized elements, the discrete fit (lpae.metrics.discrete)."""
    flat = np.asarray(residual, dtype=np.float64).reshape(-1)
    if not flat.any():
        return {}
    p = fit_gennorm_shape(flat)
    score = calibrated_nll(flat, f"gennorm:p={format_number(p)}")
    if bins is None or not (bins[1] > bins[0]).any():
        return {"nll_gennorm_bpd": score.bits_per_dim, "nll_gennorm_p": p, "nll_gennorm_scale": score.scale}
    p, alpha, nll = gennorm_yardstick(flat, bins[0], bins[1], p, score.scale)
    return {
        "nll_gennorm_bpd": nll / math.log(2.0),
        "nll_gennorm_p": p,
        "nll_gennorm_scale": alpha,
        "nll_quantized_fraction": float((bins[1] > bins[0]).mean()),
    }


@torch.no_grad()
def gennorm_sample_nll(fit_residual: np.ndarray, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per-sample NLL (N,) of x given x_hat under the generalized normal whose shape and scale are
    fitted (calibrated) on ``fit_residual``, e.g. the validation residuals."""
    flat = np.asarray(fit_residual, dtype=np.float64).reshape(-1)
    p = fit_gennorm_shape(flat)
    alpha = calibrated_nll(flat, f"gennorm:p={format_number(p)}").scale
    criterion = build(f"gennorm:p={format_number(p)},scale={format_number(alpha)}")
    return criterion(x.to(torch.float64), x_hat.to(torch.float64))


def per_feature_scaled(residual: np.ndarray) -> np.ndarray:
    """Residuals (N, ...) with each feature divided by its own scale, the median of |r| over the rows
    (the mean |r| where that median is 0), so that features whose noise differs only in scale
    share one distribution; features whose residuals are all 0 are left out. Returns (N, D_kept).
    A 1-D array counts as one feature (one scale for all)."""
    values = np.asarray(residual, dtype=np.float64)
    values = values.reshape(-1, 1) if values.ndim == 1 else values.reshape(len(values), -1)  # (N, D)
    magnitude = np.abs(values)
    scale = np.median(magnitude, axis=0)  # (D,)
    scale = np.where(scale > 0, scale, magnitude.mean(axis=0))
    kept = scale > 0
    return values[:, kept] / scale[kept]


def residual_shape(residual: np.ndarray) -> dict[str, float]:
    """residual_gennorm_p and residual_t_df of residuals (N, ...): scipy fits with loc = 0 on a
    subsample of the per-feature scaled residuals (per_feature_scaled; module docstring)."""
    sample = subsample(per_feature_scaled(residual), SHAPE_FIT_ELEMENTS)
    if not sample.any():
        return {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # the optimisers probe extreme shapes
        p = stats.gennorm.fit(sample, floc=0)[0]
        df = stats.t.fit(sample, floc=0)[0]
    return {"residual_gennorm_p": float(p), "residual_t_df": float(df)}


def posterior_noise(seed: int, start: int, stop: int, k: int, latent: int) -> np.ndarray:
    """Standard normal draws (1 + k, stop - start, latent) for rows start .. stop - 1 of a split: the
    ELBO's one, then the IWAE's k. They come in fixed blocks of NOISE_BLOCK_ROWS rows of the split,
    block b from a generator seeded with (seed, b), so a row's draws do not depend on how the rows
    are chunked (nor on the device)."""
    first, last = start // NOISE_BLOCK_ROWS, (stop - 1) // NOISE_BLOCK_ROWS
    blocks = [
        np.random.default_rng([seed, block]).standard_normal((NOISE_BLOCK_ROWS, 1 + k, latent))
        for block in range(first, last + 1)
    ]
    offset = first * NOISE_BLOCK_ROWS
    return np.concatenate(blocks)[start - offset : stop - offset].transpose(1, 0, 2)


def chunks(n_rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_rows, n_rows)) for start in range(0, n_rows, chunk_rows)]


@torch.no_grad()
def split_scale(
    model: VariationalAutoencoder, x: torch.Tensor, seed: int, k: int, chunk_rows: int
) -> float | None:
    """The scale of a ``scale=calibrated`` decoder for the whole split x: the maximum-likelihood
    scale (through the criterion's soft floor, as in training) of the residuals of the ELBO's own
    sampled reconstructions dec(mu + sigma eps), one draw per row, over every row and feature of x.
    None when the criterion has no calibrated scale."""
    criterion = model.criterion
    if not (isinstance(criterion, LocationScale) and criterion.scale.mode == "calibrated"):
        return None
    residuals = []
    for start, stop in chunks(len(x), chunk_rows):
        xb = x[start:stop]
        eps = torch.from_numpy(posterior_noise(seed, start, stop, k, model.settings.latent)[0]).to(xb)
        mu, log_var = model.posterior(xb)
        location, _ = criterion.split(xb, model.decode(model.sample(mu, log_var, eps)))
        residuals.append(location - xb)  # (B, ...)
    return float(soft_floor(criterion.log_ml_scale(torch.cat(residuals))).exp())


@torch.no_grad()
def vae_bounds(
    model: VariationalAutoencoder,
    x: torch.Tensor,
    seed: int = 0,
    k: int = IWAE_SAMPLES,
    chunk_rows: int | None = None,
) -> dict[str, float]:
    """Mean ELBO (one sample per row) and IWAE_k over the rows of x, in nats per sample.

    The rows are scored in chunks of ``chunk_rows`` (default: as many as keep k * rows near 8192
    decodings); the result does not depend on it: each row's draws come from posterior_noise, and
    a ``scale=calibrated`` decoder gets one scale for the whole split (split_scale), held fixed
    while every chunk is scored, so the bounds are those of one model p(x|z) with that scale."""
    rows = chunk_rows if chunk_rows is not None else max(1, 8192 // k)
    if rows < 1:
        raise ValueError(f"vae_bounds: chunk_rows must be at least 1, got {chunk_rows}")
    scale, criterion = split_scale(model, x, seed, k, rows), model.criterion
    held: AbstractContextManager[None] = nullcontext()
    if scale is not None and isinstance(criterion, LocationScale):
        held = criterion.scale.held(scale)
    elbo = iwae = 0.0
    with held:
        for start, stop in chunks(len(x), rows):
            xb = x[start:stop]
            eps = torch.from_numpy(posterior_noise(seed, start, stop, k, model.settings.latent)).to(xb)
            elbo += float(model.elbo(xb, eps=eps[:1]).sum(dtype=torch.float64))
            iwae += float(model.iwae(xb, k, eps=eps[1:]).sum(dtype=torch.float64))
    return {"elbo": elbo / len(x), "iwae": iwae / len(x)}
