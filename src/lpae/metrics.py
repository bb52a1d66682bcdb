"""Evaluation metrics of a trained run on its test split.

Reconstruction error in the preprocessed space, with r = x_hat - x over all test elements:
``recon_l1`` = mean |r| (mean absolute error), ``recon_l2`` = sqrt(mean r^2) (root mean squared
error). Both are power means (mean |r|^q)^(1/q), for q = 1 and 2.

For a VAE whose criterion is a normalised likelihood, ``elbo`` and ``iwae`` (k = 64 importance
samples, Burda et al. 2016) are the test-split means of the per-sample bounds on log p(x), in
nats per sample (lpae.models.VariationalAutoencoder); plain losses are not normalised densities,
so their VAEs get neither key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lpae.models import VariationalAutoencoder
from lpae.runs import Run, load_run, prepare_data

IWAE_SAMPLES = 64


def power_mean(residual: np.ndarray, q: float) -> float:
    """(mean |r|^q)^(1/q) over every element of ``residual``."""
    return float(np.mean(np.abs(residual, dtype=np.float64) ** q) ** (1.0 / q))


def reconstruction_metrics(x: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    residual = x_hat.astype(np.float64) - x
    return {"recon_l1": power_mean(residual, 1.0), "recon_l2": power_mean(residual, 2.0)}


@torch.no_grad()
def reconstruct(run: Run, x: torch.Tensor, batch_size: int = 2048) -> np.ndarray:
    parts = [run.model.reconstruct(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(parts).numpy()


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


def evaluate(run: Run | Path | str) -> dict[str, Any]:
    """Recompute the test metrics of a run from its directory."""
    run = run if isinstance(run, Run) else load_run(run)
    prepared = prepare_data(run.config)
    x_test = prepared.tensor("test")
    metrics: dict[str, Any] = {"status": run.metrics.get("status", "done")}
    metrics.update(reconstruction_metrics(x_test.numpy(), reconstruct(run, x_test)))
    model = run.model
    if isinstance(model, VariationalAutoencoder) and model.criterion.is_likelihood:
        metrics.update(vae_bounds(model, x_test, seed=int(run.config["train"]["seed"])))
    return metrics
