"""Evaluation metrics of a trained run on its test split.

Reconstruction error in the preprocessed space, with r = x_hat - x over all test elements:
``recon_l1`` = mean |r| (mean absolute error), ``recon_l2`` = sqrt(mean r^2) (root mean squared
error). Both are power means (mean |r|^q)^(1/q), for q = 1 and 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lpae.runs import Run, load_run, prepare_data


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


def evaluate(run: Run | Path | str) -> dict[str, Any]:
    """Recompute the test metrics of a run from its directory."""
    run = run if isinstance(run, Run) else load_run(run)
    prepared = prepare_data(run.config)
    x_test = prepared.tensor("test")
    metrics: dict[str, Any] = {"status": run.metrics.get("status", "done")}
    metrics.update(reconstruction_metrics(x_test.numpy(), reconstruct(run, x_test)))
    return metrics
