"""Latent mode: data mode on a trained model's latent codes of its test split, beside its raw features.

The raw features are the test rows exactly as the model sees them (the run's own fitted
preprocessing); the codes are z = model.encode(x). For a VAE, encode gives the posterior mean
(when it returns a tuple (mean, log_var) the first element is taken, when it returns a
torch distribution its mean): distances between codes are distances between posterior means.

Besides the two data-mode analyses, ``latent_vs_raw`` compares, per k, the neighbour class
agreement of the codes with that of the raw features on the same queries (paired).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lpae.contrast.agreement import paired_comparison
from lpae.contrast.data import DEFAULT_BOOTSTRAP, Features, analyse, check_labels
from lpae.contrast.distances import k_json, k_label
from lpae.runs import load_run, prepare_data

ENCODE_BATCH = 4096


@torch.no_grad()
def encode(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Latent codes (N, latent) of x, in batches; posterior means for a VAE."""
    model.eval()
    codes = []
    for start in range(0, len(x), ENCODE_BATCH):
        z: Any = model.encode(x[start : start + ENCODE_BATCH])  # type: ignore[operator]
        if isinstance(z, tuple | list):
            z = z[0]
        elif isinstance(z, torch.distributions.Distribution):
            z = z.mean
        codes.append(z.reshape(z.shape[0], -1).float().numpy())
    return np.concatenate(codes)


def run_features(run_dir: Path | str) -> tuple[Features, Features]:
    """(latent codes, raw features) of the test split of a run, with the test labels."""
    run = load_run(run_dir)
    prepared = prepare_data(run.config)
    x_test = prepared.tensor("test")
    y = prepared.dataset.y
    labels = None if y is None else y[prepared.test]
    name = str(run_dir)
    raw = Features(f"{name} raw", x_test.reshape(len(x_test), -1).numpy(), labels)
    latent = Features(f"{name} latent", encode(run.model, x_test), labels)
    return latent, raw


def latent_contrast(
    run_dir: Path | str,
    ks: Sequence[float],
    n_neighbors: int = 10,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    backend: str | None = None,
) -> dict[str, Any]:
    """Data mode on the codes and on the raw features of a run's test split, and their comparison."""
    latent, raw = run_features(run_dir)
    check_labels(latent, n_neighbors)
    on_latent = analyse(latent, ks, n_neighbors, n_bootstrap, seed, backend)
    on_raw = analyse(raw, ks, n_neighbors, n_bootstrap, seed, backend)
    report: dict[str, Any] = {
        "mode": "latent",
        "run": str(run_dir),
        "k": [k_json(k) for k in ks],
        "latent": on_latent.report,
        "raw": on_raw.report,
    }
    if on_latent.counts:
        report["latent_vs_raw"] = [
            {
                "k": k_json(k),
                **paired_comparison(
                    f"latent {k_label(k)}",
                    on_latent.counts[k],
                    f"raw {k_label(k)}",
                    on_raw.counts[k],
                    n_neighbors,
                    n_bootstrap,
                    seed + 5000 + i,
                ),
            }
            for i, k in enumerate(ks)
        ]
    return report
