"""Run directories: the files a trained model lives in, written atomically and read without pickle.

A run directory holds

- ``config.json``: every resolved setting (data spec, split, preprocessing statistics, model,
  criterion spec, training settings, lpae and torch versions);
- ``model.safetensors``: the weights (criterion parameters included), nothing else;
- ``history.csv``: one row per epoch (train loss, validation loss, validation recon_l1 / recon_l2);
- ``metrics.json``: ``status`` and the evaluation metrics.

A run is first written under a temporary sibling name and renamed into place
(lpae.atomic.staging_dir), so an interrupted write never leaves a half-written run where a
finished one is expected.

While a run trains, its checkpoint lives in the sibling folder ``OUT.partial/`` (``config.json``
and ``checkpoint.safetensors``, see lpae.checkpoint): a stable place that ``--resume`` finds, and
that :func:`check_run_dir` never accepts as a finished run. It is removed once ``OUT`` is in place.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lpae import criteria
from lpae.config import RunConfig
from lpae.data import Dataset, Preprocessor, load, split_indices
from lpae.models import Autoencoder, build_model
from lpae.protocol import anomaly_subsample, contaminate, normal_rows

RUN_FILES = ("config.json", "model.safetensors", "metrics.json")


def read_json(path: Path) -> Any:
    with open(path) as handle:
        return json.load(handle)


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    columns = list(history[0]) if history else ["epoch", "train_loss", "val_loss"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def partial_dir(out: Path) -> Path:
    """Where an unfinished run keeps its checkpoint: the sibling ``OUT.partial``."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def check_run_dir(path: Path) -> Path:
    """Raise ValueError unless ``path`` is a finished lpae run directory."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: no such run directory")
    missing = [name for name in RUN_FILES if not (path / name).is_file()]
    if missing:
        raise ValueError(f"{path}: not an lpae run directory (missing {', '.join(missing)})")
    return path


def read_config(path: Path) -> RunConfig:
    """A run's config.json as a :class:`lpae.config.RunConfig`."""
    return RunConfig.from_json(read_json(path), where=str(path))


@dataclass
class PreparedData:
    """A data set with its split and the preprocessed tensors of each part.

    Under the one-class protocol (lpae.protocol) ``train`` and ``val`` hold the normal rows only
    and ``all_train`` the whole training split; with contamination ``train_x`` holds the training
    rows as trained on (original units, outliers in the rows ``train_outliers`` marks), while
    ``dataset.x`` stays clean.
    """

    dataset: Dataset
    preprocessor: Preprocessor
    train: np.ndarray  # row indices
    val: np.ndarray
    test: np.ndarray
    all_train: np.ndarray | None = None  # training split before the one-class restriction
    train_x: np.ndarray | None = None  # (len(train), *shape) contaminated training rows
    train_outliers: np.ndarray | None = None  # (len(train),) bool

    def tensor(self, part: str) -> torch.Tensor:
        if part == "train" and self.train_x is not None:
            return torch.from_numpy(self.preprocessor.transform(self.train_x))
        rows = getattr(self, part)
        return torch.from_numpy(self.preprocessor.transform(self.dataset.x[rows]))


@dataclass(frozen=True)
class Rows:
    """Row indices of a run's parts; under the one-class protocol train and val keep the normal
    classes only, and ``all_train`` is the training split before that restriction."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    all_train: np.ndarray


def split_rows(
    dataset: Dataset,
    split_seed: int,
    val_fraction: float,
    test_fraction: float,
    normal_classes: Sequence[int] | None,
    anomaly_rate: float | None = None,
) -> Rows:
    """The seeded split of a data set (lpae.data.split_indices) and the one-class restriction:
    training and validation on the normal classes, and with an ``anomaly_rate`` the test rows'
    anomalies subsampled to that fraction of them (lpae.protocol.anomaly_subsample, seeded by the
    split seed; None: every test row, as runs written before 0.2 had)."""
    splits = split_indices(
        len(dataset.x), split_seed, dataset.y, val_fraction, test_fraction, dataset.test_rows
    )
    train = normal_rows(splits.train, dataset.y, normal_classes)
    val = normal_rows(splits.val, dataset.y, normal_classes)
    test = splits.test
    if normal_classes is not None and anomaly_rate is not None:
        test = anomaly_subsample(test, dataset.y, normal_classes, anomaly_rate, split_seed)
    return Rows(train, val, test, splits.train)


def prepare_data(config: RunConfig, dataset: Dataset | None = None, rows: Rows | None = None) -> PreparedData:
    """Load (unless given), split (unless ``rows`` are given) and preprocess data exactly as the
    run's config says, contamination included."""
    data = config.data
    if dataset is None:
        dataset = load(data.spec, nan=data.nan, image_size=data.image_size)
    if rows is None:
        rows = split_rows(
            dataset,
            data.split_seed,
            data.val_fraction,
            data.test_fraction,
            data.normal_classes,
            data.anomaly_rate,
        )
    preprocessor = Preprocessor.from_json(data.preprocess)
    prepared = PreparedData(dataset, preprocessor, rows.train, rows.val, rows.test, all_train=rows.all_train)
    if data.contaminate > 0:
        x_train = dataset.x[rows.train]
        prepared.train_x, prepared.train_outliers = contaminate(
            x_train, data.contaminate, data.contaminate_seed
        )
    return prepared


def build_from_config(config: RunConfig) -> Autoencoder:
    """The run's model (criterion first, then the networks), initialised from the global RNG."""
    criterion = criteria.build(config.loss, feature_shape=config.data.shape)
    return build_model(config.data.shape, config.model, criterion)


@dataclass
class Run:
    """A finished run loaded back from its directory."""

    path: Path
    config: RunConfig
    model: Autoencoder
    metrics: dict[str, Any]


def load_run(path: Path | str) -> Run:
    """Rebuild a run's model from config.json and model.safetensors alone."""
    path = check_run_dir(Path(path))
    config = read_config(path / "config.json")
    model = build_from_config(config)
    model.load_state_dict(load_file(path / "model.safetensors"))
    model.eval()
    return Run(path, config, model, read_json(path / "metrics.json"))


def save_weights(model: torch.nn.Module, path: Path) -> None:
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
