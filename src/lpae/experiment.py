"""One experiment end to end: data -> preprocessing -> model + criterion -> training -> run directory.

A :class:`lpae.config.RunSpec` holds every choice of a run; :func:`prepare_run` resolves it
against the loaded data into the run's :class:`lpae.config.RunConfig` (config.json) and its split,
preprocessed data; ``train_run(spec, out)`` trains it and writes the run
directory atomically; it returns the metrics (with ``status`` "done" or "diverged").

With ``stream`` resolved on (lpae.data.stream.resolve_stream: a .npy file larger than the memory
budget under auto), the file stays memory-mapped, training and validation batches are read from
it (block-shuffled, lpae.data.stream), and config.json records ``stream: "on"`` (else "off"), so
that evaluation maps it again.

While training, the checkpoint lives in ``OUT.partial/`` (lpae.runs.partial_dir) beside the
``config.json`` it belongs to; ``train_run(..., resume=True)`` continues from it when the settings
match, and the finished run directory replaces it. The model is initialised under
``torch.manual_seed(train.seed)`` (in a forked RNG, leaving the caller's global state alone).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import torch

from lpae import criteria
from lpae.atomic import staging_dir, write_json
from lpae.config import DataRecord, RunConfig, RunSpec, options
from lpae.data import Dataset, default_method, fit_preprocessor, load
from lpae.data.quantization import is_memory_mapped, run_quantization
from lpae.data.stream import BLOCK_ROWS, StreamedRows, resolve_stream
from lpae.dequantize import bin_widths
from lpae.dequantize import resolve as resolve_dequantize
from lpae.metrics import evaluate, history_health
from lpae.models import Autoencoder, check_fits_memory
from lpae.protocol import check_fraction, check_normal_classes
from lpae.runs import (
    PreparedData,
    Run,
    build_from_config,
    partial_dir,
    prepare_data,
    read_config,
    save_weights,
    split_rows,
    write_history,
)
from lpae.train import EpochCallback, TrainResult, fit, resolve_device

CHECKPOINT_FILE = "checkpoint.safetensors"


def prepare_run(spec: RunSpec, dataset: Dataset) -> tuple[RunConfig, PreparedData]:
    """Resolve every setting of a run into its config, and split and preprocess its data.

    The preprocessing is fitted on the clean training rows (the normal ones under the one-class
    protocol), and the contamination, if any, is drawn with the split seed.
    """
    criterion = criteria.build(spec.loss, feature_shape=dataset.shape)
    method = default_method(criterion.support) if spec.preprocess == "auto" else spec.preprocess
    normal = check_normal_classes(spec.normal_classes, dataset.y, spec.data)
    anomaly_rate = spec.anomaly_rate if normal is not None else None
    rows = split_rows(dataset, spec.split_seed, spec.val_fraction, spec.test_fraction, normal, anomaly_rate)
    quantization = run_quantization(spec.quantized, dataset)
    preprocessor = fit_preprocessor(dataset.x, method, quantization, rows=rows.train)
    stream = "on" if is_memory_mapped(dataset.x) else "off"  # what this run does, in config.json
    if stream == "on" and spec.contaminate:
        raise ValueError(
            f"data {spec.data!r}: --contaminate copies the training rows into memory, which streaming "
            "avoids; use --stream off"
        )
    data = DataRecord(
        spec=spec.data,
        name=dataset.name,
        shape=dataset.shape,
        kind=dataset.kind,
        n_samples=len(dataset.x),
        preprocess=preprocessor.to_json(),
        nan=spec.nan,
        image_size=spec.image_size,
        split_seed=spec.split_seed,
        val_fraction=spec.val_fraction,
        test_fraction=spec.test_fraction,
        normal_classes=normal,
        contaminate=check_fraction(spec.contaminate),
        contaminate_seed=spec.split_seed,
        anomaly_rate=anomaly_rate,
    )
    model = spec.model.resolve(dataset.shape, dataset.info.get("image_shape"))
    dequantize = resolve_dequantize(spec.train.dequantize, criterion, preprocessor.quantization, spec.data)
    train = dataclasses.replace(spec.train, dequantize=dequantize, stream=stream)
    config = RunConfig(data, str(criterion), model, train, torch_version=torch.__version__)
    check_fits_memory(dataset.shape, model, criteria.build(config.loss, feature_shape=dataset.shape))
    return config, prepare_data(config, dataset, rows)


def training_rows(prepared: PreparedData, part: str, streaming: bool) -> torch.Tensor | StreamedRows:
    """The preprocessed rows of a part: a tensor, or streamed from the mapped file (lpae.data.stream)."""
    if not streaming:
        return prepared.tensor(part)
    return StreamedRows(prepared.dataset.x, getattr(prepared, part), prepared.preprocessor)


def init_model(config: RunConfig, seed: int) -> Autoencoder:
    """Build a run's model with weights initialised from ``seed`` (see lpae.models on init order)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_from_config(config)


def resume_mismatch(saved: RunConfig, config: RunConfig) -> list[str]:
    """Names of the settings in which ``config`` differs from the interrupted run's ``saved`` one
    (versions, and the settings the schema marks resume_free, may differ)."""
    old, new = saved.to_json(), config.to_json()
    differ = [key for key in ("data", "loss", "model") if old[key] != new[key]]
    free = {name for name, option in options().items() if option.resume_free}
    for key in sorted(set(old["train"]) | set(new["train"])):
        if key not in free and old["train"].get(key) != new["train"].get(key):
            differ.append(f"train.{key}")
    return differ


def checkpoint_path(out: Path, config: RunConfig, resume: bool, overwrite: bool) -> Path | None:
    """Prepare ``OUT.partial`` for this run and return its checkpoint path (None: no checkpoints)."""
    partial = partial_dir(out)
    if partial.exists():
        if resume:
            saved_file = partial / "config.json"
            differ = resume_mismatch(read_config(saved_file), config) if saved_file.is_file() else []
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
    if config.train.checkpoint_every == 0:
        return None
    partial.mkdir(parents=True)
    write_json(partial / "config.json", config.to_json())
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
    streaming = resolve_stream(spec.train.stream, spec.data, spec.train.memory_budget) == "on"
    dataset = load(spec.data, nan=spec.nan, image_size=spec.image_size, mmap=streaming)
    config, prepared = prepare_run(spec, dataset)
    model = init_model(config, spec.train.seed)
    x_train, x_val = training_rows(prepared, "train", streaming), training_rows(prepared, "val", streaming)
    # streamed: the first block's rows stand for the rest (reading all would be an epoch)
    model.criterion.check_support(x_train if isinstance(x_train, torch.Tensor) else x_train[:BLOCK_ROWS])
    checkpoint = checkpoint_path(out, config, resume, overwrite)
    width = bin_widths(prepared.preprocessor.quantization) if config.train.dequantize == "on" else None
    result = fit(
        model, x_train, x_val, config.train, checkpoint=checkpoint, on_epoch=on_epoch, bin_width=width
    )
    del x_train, x_val  # evaluation reads the test rows: free the training parts first
    return write_trained_run(out, config, model, result, prepared, overwrite)


def write_trained_run(
    out: Path,
    config: RunConfig,
    model: Autoencoder,
    result: TrainResult,
    prepared: PreparedData | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a trained run's directory (staged, then renamed into place); return its metrics.

    config.json, model.safetensors, history.csv and metrics.json: the status (and reason when
    diverged), the test metrics of lpae.metrics.evaluate when done (on ``prepared``, the run's
    data already split and preprocessed, when given) with the training-health flags of its
    history (lpae.metrics.health), learned criterion parameters and training bookkeeping. Also
    used for the members of fused groups (lpae.fused).
    """
    model.to("cpu")  # metrics are computed on the CPU whatever the training device
    with staging_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / "config.json", config.to_json())
        save_weights(model, tmp / "model.safetensors")
        write_history(tmp / "history.csv", result.history)
        metrics: dict[str, Any] = {"status": result.status}
        if result.reason:
            metrics["reason"] = result.reason
        write_json(tmp / "metrics.json", metrics)
        if result.status == "done":
            metrics = evaluate(Run(tmp, config, model, metrics), prepared=prepared)
            # under_trained, unstable: lpae.metrics.health
            metrics.update(history_health([row["val_loss"] for row in result.history]))
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
