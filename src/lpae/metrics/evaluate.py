"""Evaluate a trained run on its test split: one flat dict of metrics (docs/metrics.md, key by key).

``evaluate(run)`` rebuilds the run's data exactly as its config.json says (split, preprocessing,
one-class restriction) and scores the clean test split; ``evaluate(run, data=SPEC)`` scores the
same model on another data set (a spec string or a loaded lpae.data.Dataset) whose samples have
the run's shape, preprocessed with the run's stored preprocessing and split with the run's split
settings (its test part is scored, its training part serves as kNN / probe references).

Stages, each in its own module:

1. decoder outputs of the test rows (batches of EVAL_BATCH rows), reconstructions x_hat;
2. reconstruction.py: recon_* in the preprocessed space and recon_*_orig in original units
   (x_hat mapped back by Preprocessor.inverse, against the original rows); clean_* against the
   clean signal when the data set has one; images.py: psnr, ssim for image data;
3. likelihood.py: nll_own_bpd, nll_gennorm_bpd, residual shape fits; elbo / iwae for VAEs;
4. latent.py: kNN and probe accuracies of the codes and of the raw features, for labelled data;
5. anomaly.py: one-class runs only.

A model whose decoder outputs contain NaN or inf on test rows gets its reconstruction metrics
(inf or nan as they come) and ``nonfinite_outputs``, the number of such values, and no other
metric: evaluation never fails on a model that trained to completion.

Training rows are never the contaminated ones (lpae.protocol): kNN and probe references are
clean training rows, and under the one-class protocol they come from every class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lpae.data import Dataset, load
from lpae.metrics.anomaly import anomaly_metrics, base_rate
from lpae.metrics.images import image_metrics, image_view
from lpae.metrics.latent import (
    KNN_QUERY_ROWS,
    KNN_REFERENCE_ROWS,
    seeded_subset,
    usefulness_metrics,
)
from lpae.metrics.likelihood import (
    Bins,
    gennorm_nll,
    gennorm_sample_nll,
    own_nll_bpd,
    residual_shape,
    vae_bounds,
)
from lpae.metrics.reconstruction import clean_metrics, reconstruction_metrics
from lpae.metrics.registry import Metric, declare
from lpae.models import Autoencoder, VariationalAutoencoder
from lpae.runs import PreparedData, Run, load_run, prepare_data

EVAL_BATCH = 2048
KnnRows = tuple[int | None, int | None]  # the most kNN queries (test rows) and references (None: all)
DEFAULT_KNN_ROWS: KnnRows = (KNN_QUERY_ROWS, KNN_REFERENCE_ROWS)

declare(
    Metric("status", "done, or diverged for a run whose training diverged"),
    Metric("eval_data", "the data set scored, when it is not the run's own"),
    Metric("nonfinite_outputs", "NaN or infinite decoder outputs on the test rows", "values"),
)


@torch.no_grad()
def decoder_outputs(model: Autoencoder, x: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """model(x) in batches: (N, n_outputs * C, ...), no corruption, a VAE decodes its posterior mean."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def reconstruct(run: Run, x: torch.Tensor, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Point reconstructions of x as a numpy array shaped like x."""
    return run.model.criterion.reconstruct(decoder_outputs(run.model, x, batch_size)).numpy()


@torch.no_grad()
def encode(model: Autoencoder, x: torch.Tensor, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Latent codes (N, latent) of x; the posterior mean for a VAE."""
    model.eval()
    return torch.cat([model.encode(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).numpy()


def load_eval_data(run: Run, data: str | Dataset | None) -> Dataset | None:
    """The data set to score: None means the run's own (prepare_data loads it)."""
    if data is None or isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, str):
        settings = run.config.data
        dataset = load(data, nan=settings.nan, image_size=settings.image_size)
    else:
        raise TypeError(f"data must be a data spec string or an lpae.data.Dataset, got {type(data).__name__}")
    expected = run.config.data.shape
    if dataset is not None and dataset.shape != expected:
        raise ValueError(
            f"data {dataset.name!r}: samples of shape {dataset.shape} do not fit the run {run.path}, "
            f"trained on samples of shape {expected}"
        )
    return dataset


def evaluate(
    run: Run | Path | str,
    data: str | Dataset | None = None,
    prepared: PreparedData | None = None,
    knn_rows: KnnRows = DEFAULT_KNN_ROWS,
) -> dict[str, Any]:
    """Every metric of docs/metrics.md for the run's test split (or that of ``data``).

    ``prepared``: the data to score (the run's own, or those of ``data``), already split and
    preprocessed by ``lpae.runs.prepare_data(run.config, ...)`` (training passes it so the data
    are not loaded twice). ``knn_rows``: the most (kNN queries, kNN and probe references); None:
    every row.
    """
    check_knn_rows(knn_rows)
    run = run if isinstance(run, Run) else load_run(run)
    if prepared is None:
        prepared = prepare_data(run.config, load_eval_data(run, data))
    model = run.model
    model.eval()
    metrics: dict[str, Any] = {"status": run.metrics.get("status", "done")}
    if data is not None:
        metrics["eval_data"] = data if isinstance(data, str) else prepared.dataset.name

    x = prepared.tensor("test")  # (N, *shape) preprocessed
    out = decoder_outputs(model, x)
    x_hat = model.criterion.reconstruct(out)
    metrics.update(reconstruction_scores(prepared, x.numpy(), x_hat.numpy()))
    nonfinite = int((~torch.isfinite(out)).sum())
    if nonfinite:  # a broken model: report it rather than fail (training would lose the run)
        metrics["nonfinite_outputs"] = nonfinite
        return metrics
    metrics.update(likelihood_scores(run, prepared, x, out, x_hat, own=data is None))
    metrics.update(latent_scores(model, prepared, x, knn_rows))
    metrics.update(anomaly_scores(run, prepared, x, out, x_hat))
    return metrics


def reconstruction_scores(prepared: PreparedData, x: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    dataset, rows = prepared.dataset, prepared.test
    x_orig = dataset.x[rows]
    x_hat_orig = prepared.preprocessor.inverse(x_hat)
    found = reconstruction_metrics(x, x_hat)
    found.update(reconstruction_metrics(x_orig, x_hat_orig, "_orig"))
    view = image_view(dataset.shape, dataset.info)
    if view is not None:
        found.update(image_metrics(x_orig, x_hat_orig, view))
    if dataset.clean is not None:
        clean = dataset.clean[rows]
        found.update(clean_metrics(prepared.preprocessor.transform(clean), x_hat))
        found.update(clean_metrics(clean, x_hat_orig, "_orig"))
    return found


def quantized_bins(prepared: PreparedData, x: np.ndarray, own: bool) -> Bins | None:
    """Each test element's bin as offsets from x (lpae.data.Quantization.bin_offsets), in the
    model's space: the run's recorded quantization (None in a config.json from before it was
    recorded: densities, as then) for its own data, that of the other data set otherwise."""
    preprocessor = prepared.preprocessor
    quantization = (
        preprocessor.quantization if own else preprocessor.model_quantization(prepared.dataset.quantization)
    )
    return None if quantization is None else quantization.bin_offsets(x)


def likelihood_scores(
    run: Run,
    prepared: PreparedData,
    x: torch.Tensor,
    out: torch.Tensor,
    x_hat: torch.Tensor,
    own: bool = True,
) -> dict[str, float]:
    model = run.model
    residual = (x_hat.to(torch.float64) - x).numpy()
    bins = quantized_bins(prepared, x.numpy(), own=own)
    found = own_nll_bpd(model.criterion, x, out, bins)
    found.update(gennorm_nll(residual, bins))
    found.update(residual_shape(residual))
    if isinstance(model, VariationalAutoencoder) and model.criterion.is_likelihood:
        found.update(vae_bounds(model, x, seed=run.config.train.seed))
    return found


def reference_rows(prepared: PreparedData, size: int | None = KNN_REFERENCE_ROWS) -> np.ndarray:
    """Training rows that serve as kNN / probe references: every class, never contaminated."""
    pool = reference_pool(prepared)
    return pool[seeded_subset(len(pool), size)]


def reference_pool(prepared: PreparedData) -> np.ndarray:
    return prepared.all_train if prepared.all_train is not None else prepared.train


def check_knn_rows(knn_rows: KnnRows) -> None:
    if not isinstance(knn_rows, tuple) or len(knn_rows) != 2:
        raise TypeError(f"knn_rows must be a pair (queries, references), got {knn_rows!r}")
    for name, size in zip(("queries", "references"), knn_rows, strict=True):
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(
                f"knn_rows: {name} must be a positive number of rows or None (all), got {size!r}"
            )


def subset_note(prepared: PreparedData, knn_rows: KnnRows = DEFAULT_KNN_ROWS) -> str | None:
    """One line saying which rows the kNN accuracies and the probe used, when they were
    subsampled (None otherwise, or without labels), and how to use every row."""
    if prepared.dataset.y is None:
        return None
    n_test, n_reference = len(prepared.test), len(reference_pool(prepared))
    queries = len(seeded_subset(n_test, knn_rows[0]))
    references = len(seeded_subset(n_reference, knn_rows[1]))
    if queries == n_test and references == n_reference:
        return None
    factor = (n_test * n_reference) / (queries * references)
    return (
        f"eval: kNN accuracies of a seeded {queries:,} of {n_test:,} test rows against {references:,} of "
        f"{n_reference:,} training rows (the linear probe fitted on those {references:,}, scored on every "
        f"test row); --knn-rows all uses every row, about {factor:,.0f}x the kNN time"
    )


def latent_scores(
    model: Autoencoder, prepared: PreparedData, x: torch.Tensor, knn_rows: KnnRows = DEFAULT_KNN_ROWS
) -> dict[str, float]:
    labels = prepared.dataset.y
    if labels is None:
        return {}
    rows = reference_rows(prepared, knn_rows[1])
    x_reference = torch.from_numpy(prepared.preprocessor.transform(prepared.dataset.x[rows]))
    y_reference, y_test = labels[rows], labels[prepared.test]
    queries = seeded_subset(len(x), knn_rows[0])
    z_reference, z_test = encode(model, x_reference), encode(model, x)
    found = usefulness_metrics(z_reference, y_reference, z_test, y_test, queries)
    raw = usefulness_metrics(x_reference.numpy(), y_reference, x.numpy(), y_test, queries, prefix="raw_")
    found.update(raw)
    return found


@torch.no_grad()
def anomaly_scores(
    run: Run, prepared: PreparedData, x: torch.Tensor, out: torch.Tensor, x_hat: torch.Tensor
) -> dict[str, float]:
    """One-class runs only: the test rows outside the normal classes are the anomalies."""
    normal = run.config.data.normal_classes
    if normal is None or prepared.dataset.y is None:
        return {}
    model = run.model
    is_anomaly = ~np.isin(prepared.dataset.y[prepared.test], np.asarray(normal))
    found = base_rate(is_anomaly)
    own = model.criterion(x, out)  # (N,) the criterion's own per-sample loss, whole split at once
    found.update(anomaly_metrics(own.numpy(), is_anomaly))
    x_val = prepared.tensor("val")
    val_hat = model.criterion.reconstruct(decoder_outputs(model, x_val))
    val_residual = (val_hat.to(torch.float64) - x_val).numpy()
    if val_residual.any():
        nll = gennorm_sample_nll(val_residual, x, x_hat)
        found.update(anomaly_metrics(nll.numpy(), is_anomaly, suffix="_nll"))
    return found
