"""One experiment end to end: data -> preprocessing -> model + criterion -> training -> run directory.

``RunSpec`` holds every choice of a run; ``train_run(spec, out)`` trains it and writes the run
directory atomically; it returns the metrics (with ``status`` "done" or "diverged").

While training, the checkpoint lives in ``OUT.partial/`` (lpae.runs.partial_dir) beside the
``config.json`` it belongs to; ``train_run(..., resume=True)`` continues from it when the settings
match, and the finished run directory replaces it. The model is initialised under
``torch.manual_seed(train.seed)`` (in a forked RNG, leaving the caller's global state alone).
"""

from __future__ import annotations

import json
import platform
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from lpae import __version__, criteria
from lpae.data import Dataset, default_method, fit_preprocessor, load, split_indices
from lpae.metrics import evaluate
from lpae.models import Autoencoder, ModelSettings
from lpae.protocol import check_fraction, check_normal_classes, normal_rows
from lpae.runs import (
    PreparedData,
    Run,
    build_from_config,
    partial_dir,
    prepare_data,
    read_json,
    save_weights,
    staging_dir,
    write_history,
    write_json,
)
from lpae.train import EpochCallback, TrainResult, TrainSettings, fit, resolve_device

CHECKPOINT_FILE = "checkpoint.safetensors"
# Settings that may differ between an interrupted run and its resumption.
RESUME_FREE_SETTINGS = ("device", "checkpoint_every")


@dataclass(frozen=True)
class RunSpec:
    data: str = "digits"
    loss: str = "l2"
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    preprocess: str = "auto"  # standard, minmax, none, or auto (follows the criterion's support)
    nan: str = "error"  # NaN / infinite values in data files: "error" or "drop" the rows
    image_size: int | None = None  # resize image data to image_size x image_size
    split_seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    normal_classes: tuple[int, ...] | None = None  # one-class protocol (lpae.protocol)
    contaminate: float = 0.0  # fraction of training rows replaced by gross outliers (lpae.protocol)


def make_config(spec: RunSpec, dataset: Dataset) -> dict[str, Any]:
    """Resolve every setting of a run (preprocessing fitted on the training split) into JSON."""
    criterion = criteria.build(spec.loss, feature_shape=dataset.shape)
    method = default_method(criterion.support) if spec.preprocess == "auto" else spec.preprocess
    splits = split_indices(
        len(dataset.x), spec.split_seed, dataset.y, spec.val_fraction, spec.test_fraction, dataset.test_rows
    )
    normal = check_normal_classes(spec.normal_classes, dataset.y, spec.data)
    contamination = check_fraction(spec.contaminate)
    train_rows = normal_rows(splits.train, dataset.y, normal)
    preprocessor = fit_preprocessor(dataset.x[train_rows], method)  # clean (normal) training rows
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
            "nan": spec.nan,
            "image_size": spec.image_size,
            "n_samples": len(dataset.x),
            "split_seed": spec.split_seed,
            "val_fraction": spec.val_fraction,
            "test_fraction": spec.test_fraction,
            "preprocess": preprocessor.to_json(),
            "normal_classes": None if normal is None else list(normal),
            "contaminate": contamination,
            "contaminate_seed": spec.split_seed,
        },
        "loss": str(criterion),
        "model": asdict(spec.model.resolve(dataset.shape, dataset.info.get("image_shape"))),
        "train": spec.train.to_json(),
    }


def init_model(config: dict[str, Any], seed: int) -> Autoencoder:
    """Build a run's model with weights initialised from ``seed`` (see lpae.models on init order)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_from_config(config)


def resume_mismatch(saved: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Names of the settings in which ``config`` differs from the interrupted run's ``saved`` one."""
    config = json.loads(json.dumps(config))  # as stored: tuples become lists
    differ = [key for key in ("data", "loss", "model") if saved.get(key) != config.get(key)]
    saved_train, train = dict(saved.get("train", {})), dict(config["train"])
    for key in sorted(set(saved_train) | set(train)):
        if key not in RESUME_FREE_SETTINGS and saved_train.get(key) != train.get(key):
            differ.append(f"train.{key}")
    return differ


def checkpoint_path(out: Path, config: dict[str, Any], resume: bool, overwrite: bool) -> Path | None:
    """Prepare ``OUT.partial`` for this run and return its checkpoint path (None: no checkpoints)."""
    partial = partial_dir(out)
    if partial.exists():
        if resume:
            saved = read_json(partial / "config.json") if (partial / "config.json").is_file() else {}
            differ = resume_mismatch(saved, config)
            if differ:
                raise ValueError(
                    f"{partial}: cannot resume: the interrupted run was started with other settings "
                    f"({', '.join(differ)}); repeat its command, or pass --overwrite to start over"
                )
            return partial / CHECKPOINT_FILE
        if not overwrite:
            raise ValueError(
                f"{partial}: an interrupted run of {out} is there; pass --resume to continue it "
                "or --overwrite to start over"
            )
        shutil.rmtree(partial)
    if config["train"]["checkpoint_every"] == 0:
        return None
    partial.mkdir(parents=True)
    write_json(partial / "config.json", config)
    return partial / CHECKPOINT_FILE


def train_run(
    spec: RunSpec,
    out: Path | str,
    overwrite: bool = False,
    resume: bool = False,
    on_epoch: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train one run and write its directory; return its metrics.

    ``resume`` continues an interrupted run from ``OUT.partial`` (a fresh start when there is none);
    ``on_epoch`` is passed to :func:`lpae.train.fit` (progress display).
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: already exists (choose another --out, or pass --overwrite)")
    resolve_device(spec.train.device)  # a missing GPU is an error before anything is written
    dataset = load(spec.data, nan=spec.nan, image_size=spec.image_size)
    config = make_config(spec, dataset)
    model = init_model(config, spec.train.seed)
    prepared = prepare_data(config, dataset)
    x_train, x_val = prepared.tensor("train"), prepared.tensor("val")
    model.criterion.check_support(x_train)
    checkpoint = checkpoint_path(out, config, resume, overwrite)
    result = fit(model, x_train, x_val, spec.train, checkpoint=checkpoint, on_epoch=on_epoch)
    return write_trained_run(out, config, model, result, prepared, overwrite)


def write_trained_run(
    out: Path,
    config: dict[str, Any],
    model: Autoencoder,
    result: TrainResult,
    prepared: PreparedData | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a trained run's directory (staged, then renamed into place); return its metrics.

    config.json, model.safetensors, history.csv and metrics.json: the status (and reason when
    diverged), the test metrics of lpae.metrics.evaluate when done (on ``prepared``, the run's
    data already split and preprocessed, when given), learned criterion parameters and training
    bookkeeping. Also used for the members of fused groups (lpae.fused).
    """
    model.to("cpu")  # metrics are computed on the CPU whatever the training device
    with staging_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / "config.json", config)
        save_weights(model, tmp / "model.safetensors")
        write_history(tmp / "history.csv", result.history)
        metrics: dict[str, Any] = {"status": result.status}
        if result.reason:
            metrics["reason"] = result.reason
        write_json(tmp / "metrics.json", metrics)
        if result.status == "done":
            metrics = evaluate(Run(tmp, config, model, metrics), prepared=prepared)
        metrics.update(model.criterion.learned())  # learned_p, learned_df, learned_alpha, learned_scale
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
