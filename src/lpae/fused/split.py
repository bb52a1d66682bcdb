"""Write each member of a fused group as an ordinary run directory.

A member's directory holds the same files as one written by lpae.experiment.train_run
(config.json, model.safetensors, history.csv, metrics.json), written the same way (a staging
folder renamed into place) by the same lpae.runs writers, with the same metrics.json keys
(status, reason when diverged, the test metrics of lpae.metrics.evaluate when done, learned
criterion parameters, epochs_run, best_epoch, train_seconds). Only config.json tells it apart:
``"fused": true`` and ``"group"``, an id shared by the members trained together.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from lpae.metrics import evaluate
from lpae.models import Autoencoder
from lpae.runs import Run, partial_dir, save_weights, staging_dir, write_history, write_json
from lpae.train import TrainResult


def fused_config(config: dict[str, Any], group: str) -> dict[str, Any]:
    """A member's config.json: its own resolved config plus the fused-group marks."""
    return {**config, "fused": True, "group": group}


def write_member(
    out: Path, config: dict[str, Any], model: Autoencoder, result: TrainResult, overwrite: bool = False
) -> dict[str, Any]:
    """Write one trained member to ``out`` as lpae.experiment.train_run would; return its metrics."""
    model.to("cpu")
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
        metrics.update(model.criterion.learned())
        metrics.update(
            {
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch,
                "train_seconds": round(result.seconds, 3),
            }
        )
        write_json(tmp / "metrics.json", metrics)
    shutil.rmtree(partial_dir(out), ignore_errors=True)
    return metrics
