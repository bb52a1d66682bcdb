"""One experiment end to end: data -> preprocessing -> model + criterion -> training -> run directory.

``RunSpec`` holds every choice of a run; ``train_run(spec, out)`` trains it and writes the run
directory atomically; it returns the metrics (with ``status`` "done" or "diverged").
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from lpae import __version__, criteria
from lpae.data import Dataset, default_method, fit_preprocessor, load, split_indices
from lpae.metrics import evaluate
from lpae.models import ModelSettings
from lpae.runs import (
    Run,
    build_from_config,
    prepare_data,
    save_weights,
    staging_dir,
    write_history,
    write_json,
)
from lpae.train import TrainSettings, fit


@dataclass(frozen=True)
class RunSpec:
    data: str = "digits"
    loss: str = "l2"
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    preprocess: str = "auto"  # standard, minmax, none, or auto (follows the criterion's support)
    split_seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15


def make_config(spec: RunSpec, dataset: Dataset) -> dict[str, Any]:
    """Resolve every setting of a run (preprocessing fitted on the training split) into JSON."""
    criterion = criteria.build(spec.loss, feature_shape=dataset.shape)
    method = default_method(criterion.support) if spec.preprocess == "auto" else spec.preprocess
    splits = split_indices(len(dataset.x), spec.split_seed, dataset.y, spec.val_fraction, spec.test_fraction)
    preprocessor = fit_preprocessor(dataset.x[splits.train], method)
    return {
        "format": "lpae-run",
        "lpae_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "data": {
            "spec": spec.data,
            "name": dataset.name,
            "shape": list(dataset.shape),
            "kind": dataset.kind,
            "n_samples": len(dataset.x),
            "split_seed": spec.split_seed,
            "val_fraction": spec.val_fraction,
            "test_fraction": spec.test_fraction,
            "preprocess": preprocessor.to_json(),
        },
        "loss": str(criterion),
        "model": {**asdict(spec.model), "hidden": list(spec.model.hidden)},
        "train": spec.train.to_json(),
    }


def train_run(spec: RunSpec, out: Path | str, overwrite: bool = False) -> dict[str, Any]:
    """Train one run and write its directory; return its metrics."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: already exists (choose another --out, or pass --overwrite)")
    dataset = load(spec.data)
    config = make_config(spec, dataset)
    torch.manual_seed(spec.train.seed)
    model = build_from_config(config)
    prepared = prepare_data(config, dataset)
    x_train, x_val = prepared.tensor("train"), prepared.tensor("val")
    model.criterion.check_support(x_train)
    result = fit(model, x_train, x_val, spec.train)
    with staging_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / "config.json", config)
        save_weights(model, tmp / "model.safetensors")
        write_history(tmp / "history.csv", result.history)
        metrics: dict[str, Any] = {"status": result.status}
        if result.reason:
            metrics["reason"] = result.reason
        write_json(tmp / "metrics.json", metrics)
        if result.status == "done":
            metrics = evaluate(Run(tmp, config, model, metrics))
        metrics.update(model.criterion.learned())  # learned_p, learned_df, learned_alpha, learned_scale
        metrics.update(
            {
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch,
                "train_seconds": round(result.seconds, 3),
            }
        )
        write_json(tmp / "metrics.json", metrics)
    return metrics
