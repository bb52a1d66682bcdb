"""Generation from a trained VAE: decode draws z ~ N(0, I) from the prior, or the straight line
between two posterior means, and show the decoder mean or a draw from p(x | z).

- prior samples: z_i ~ N(0, I) (a ``torch.Generator`` seeded with ``seed``), x_i = the decoder's
  point reconstruction of z_i (the mean of p(x | z_i), criterion.reconstruct) or, with
  ``noise``, one draw from p(x | z_i) (lpae.distributions.decoder_distribution, drawn from the
  global RNG re-seeded with ``seed + 1`` inside ``torch.random.fork_rng``, so the caller's
  RNG state is untouched);
- interpolation: z_t = (1 - t) mu_I + t mu_J for t = 0, 1/7, ..., 1 (INTERPOLATION_STEPS), mu the
  posterior means of test items I and J, decoded the same way.

Outputs are in original units (lpae.data.Preprocessor.inverse). Images are clipped to the
training split's range (a draw of a heavy-tailed decoder can leave it by far). A criterion
that is a plain loss, or the improper Bernoulli baseline, has only a mean. A ``scale=calibrated``
decoder draws with the maximum-likelihood scale of its validation residuals
(lpae.metrics.likelihood.split_scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.image import imsave
from torch import Tensor

from lpae.atomic import write_with
from lpae.criteria.likelihood import LocationScale
from lpae.distributions import decoder_distribution
from lpae.metrics.likelihood import split_scale
from lpae.models import VariationalAutoencoder
from lpae.runs import PreparedData, Run, prepare_data

INTERPOLATION_STEPS = 8
MAX_SAMPLES = 100_000


def image_shape(shape: Sequence[int], info: dict[str, object]) -> tuple[int, ...] | None:
    """(C, H, W) when one sample of ``shape`` is an image (or the data set declares
    ``info["image_shape"]``, e.g. digits as 1 x 8 x 8), else None."""
    if len(shape) == 3:
        return tuple(shape)
    declared = info.get("image_shape")
    if isinstance(declared, list | tuple) and int(np.prod(declared)) == int(np.prod(shape)):
        return tuple(int(v) for v in declared)
    return None


def as_pictures(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(N, features) -> (N, H, W) for one channel, (N, H, W, C) otherwise."""
    images = x.reshape(len(x), *shape)
    return images[:, 0] if shape[0] == 1 else np.moveaxis(images, 1, -1)


@dataclass
class Generated:
    """Generated samples (N, *shape) in original units, and the image shape (C, H, W) or None."""

    x: np.ndarray
    image_shape: tuple[int, ...] | None
    low: float  # the training split's range in original units
    high: float


def vae_of(run: Run) -> VariationalAutoencoder:
    if not isinstance(run.model, VariationalAutoencoder):
        raise ValueError(
            f"{run.path}: a {run.config.model.model} run has no prior to sample from; "
            f"lpae sample needs a VAE run (train with --model vae)"
        )
    return run.model


def check_n(n: int) -> int:
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"--n must be an integer from 1 to {MAX_SAMPLES}, got {n}")
    return n


@torch.no_grad()
def decode(model: VariationalAutoencoder, z: Tensor, noise: bool, seed: int, val: Tensor) -> Tensor:
    """Decoder means of z (N, latent), or one draw from p(x | z) each; preprocessed units (N, *shape)."""
    out = model.decode(z)
    if not noise:
        return model.criterion.reconstruct(out)
    criterion = model.criterion
    held: AbstractContextManager[None] = nullcontext()
    if isinstance(criterion, LocationScale) and criterion.scale.mode == "calibrated":
        scale = split_scale(model, val, seed, k=1, chunk_rows=4096)
        if scale is not None:
            held = criterion.scale.held(scale)
    with held:
        distribution = decoder_distribution(criterion, out)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return distribution.sample()


def original_units(prepared: PreparedData, x: Tensor) -> Generated:
    shape = image_shape(prepared.dataset.shape, prepared.dataset.info)
    train = prepared.dataset.x[prepared.train]
    low, high = float(train.min()), float(train.max())
    values = prepared.preprocessor.inverse(x.numpy())
    if shape is not None:
        values = np.clip(values, low, high)
    return Generated(values, shape, low, high)


def prior_samples(run: Run, n: int, seed: int = 0, noise: bool = False) -> Generated:
    """``n`` samples of the VAE's generative model (module docstring), original units."""
    model = vae_of(run)
    check_n(n)
    prepared = prepare_data(run.config)
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn((n, model.settings.latent), generator=generator)
    return original_units(prepared, decode(model, z, noise, seed, prepared.tensor("val")))


def interpolation(run: Run, first: int, last: int, seed: int = 0, noise: bool = False) -> Generated:
    """Decodings of INTERPOLATION_STEPS points on the line between the posterior means of test
    items ``first`` and ``last`` (their positions in the run's test split)."""
    model = vae_of(run)
    prepared = prepare_data(run.config)
    n_test = len(prepared.test)
    for item in (first, last):
        if not 0 <= item < n_test:
            raise ValueError(f"--interpolate: test item {item} does not exist (the test split has {n_test})")
    with torch.no_grad():
        mu, _ = model.posterior(prepared.tensor("test")[[first, last]])  # (2, latent)
    t = torch.linspace(0.0, 1.0, INTERPOLATION_STEPS).unsqueeze(1)  # (steps, 1)
    z = (1 - t) * mu[0] + t * mu[1]  # (steps, latent)
    return original_units(prepared, decode(model, z, noise, seed, prepared.tensor("val")))


def image_grid(generated: Generated, columns: int | None = None, min_pixels: int = 32) -> np.ndarray:
    """The images tiled into one array in [0, 1] ((H', W') grey or (H', W', 3)), scaled by the
    training range, a 1-pixel gap between tiles, each pixel repeated so a tile has at least
    ``min_pixels`` rows."""
    if generated.image_shape is None:
        raise ValueError("image_grid needs image data")
    pictures = as_pictures(generated.x, generated.image_shape)  # (N, H, W[, C])
    span = max(generated.high - generated.low, 1e-12)
    pictures = np.clip((pictures - generated.low) / span, 0.0, 1.0)
    factor = max(1, math.ceil(min_pixels / pictures.shape[1]))
    pictures = pictures.repeat(factor, axis=1).repeat(factor, axis=2)
    n, height, width = pictures.shape[:3]
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (height + 1) - 1, cols * (width + 1) - 1, *pictures.shape[3:]))
    for k, picture in enumerate(pictures):
        top, left = (i * (size + 1) for i, size in zip(divmod(k, cols), (height, width), strict=True))
        grid[top : top + height, left : left + width] = picture
    return grid


def write_samples(path: Path | str, generated: Generated) -> Path:
    """A PNG image grid (``.png``) for images, a CSV (``.csv``: header x0, x1, ..., one row per
    sample, original units) for tabular data; written atomically (lpae.atomic)."""
    path = Path(path)
    suffix = ".png" if generated.image_shape is not None else ".csv"
    if path.suffix.lower() != suffix:
        kind = "image" if generated.image_shape is not None else "tabular"
        raise ValueError(f"--out {path}: {kind} data are written as {suffix}; name the file *{suffix}")
    if generated.image_shape is not None:
        grid = image_grid(generated)
        return write_with(path, lambda tmp: imsave(tmp, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png"))
    flat = generated.x.reshape(len(generated.x), -1)
    header = ",".join(f"x{i}" for i in range(flat.shape[1]))
    return write_with(
        path, lambda tmp: np.savetxt(tmp, flat, delimiter=",", header=header, comments="", fmt="%.9g")
    )
