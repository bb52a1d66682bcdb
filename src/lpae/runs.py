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
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lpae import criteria
from lpae.atomic import write_with
from lpae.config import RunConfig
from lpae.data import Dataset, Preprocessor, load, split_indices
from lpae.models import Autoencoder, build_model
from lpae.protocol import anomaly_subsample, contaminate, normal_rows

RUN_FILES = ("config.json", "model.safetensors", "metrics.json")


def read_json(path: Path) -> Any:
    """A JSON file's content; ValueError naming the file when it is not JSON (or not UTF-8)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}: not valid JSON ({error.msg}: line {error.lineno} column {error.colno}); "
            "fix the file or restore it"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file (JSON expected); restore the file") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object (config.json, metrics.json)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a JSON object {{...}}, found {type(data).__name__}; restore the file"
        )
    return data


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
    return RunConfig.from_json(read_json_object(path), where=str(path))


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
        return torch.from_numpy(self.preprocessor.transform_rows(self.dataset.x, rows))


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
        streamed = config.train.stream == "on"  # a streamed run's file is mapped again (lpae.data.stream)
        dataset = load(data.spec, nan=data.nan, image_size=data.image_size, mmap=streamed)
        if dataset.shape != data.shape:
            raise ValueError(
                f"data {data.spec!r} has samples of shape {dataset.shape}, but the run's config.json "
                f"says {data.shape}: the config points at other data than the run was trained on"
            )
    if data.normal_classes is not None and dataset.y is not None:
        present = sorted(int(c) for c in np.unique(dataset.y))
        absent = [c for c in data.normal_classes if c not in present]
        if absent:
            raise ValueError(
                f"normal_classes {list(data.normal_classes)} of the run's config.json: "
                f"{', '.join(map(str, absent))} not among the classes of {dataset.name!r} "
                f"({', '.join(map(str, present))}); the one-class protocol needs them in the data"
            )
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
    metrics = read_json_object(path / "metrics.json")
    try:
        model = build_from_config(config)
    except ValueError as error:
        raise ValueError(f"{path / 'config.json'}: {error}") from None
    load_weights(model, path / "model.safetensors")
    model.eval()
    return Run(path, config, model, metrics)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; ValueError naming the file when it is damaged or not one
    (a pickle written by torch.save is refused here, never unpickled)."""
    try:
        return load_file(path)
    except SafetensorError as error:
        raise ValueError(
            f"{path}: not a readable safetensors file ({' '.join(str(error).split())}); "
            "the file is damaged or was not written by lpae: retrain the run or restore the file"
        ) from None


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load a run's weights into ``model``, built from its config.json: every tensor must be there
    with the shape the config implies, otherwise a ValueError says which and why."""
    weights = read_weights(path)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    wrong = [
        f"{name} is {tuple(weights[name].shape)}, config.json implies {shape}"
        for name, shape in expected.items()
        if name in weights and tuple(weights[name].shape) != shape
    ]
    problems = (
        ([f"missing {', '.join(missing[:3])}"] if missing else [])
        + ([f"unexpected {', '.join(extra[:3])}"] if extra else [])
        + wrong[:2]
    )
    if problems:
        raise ValueError(
            f"{path}: the weights do not match the model config.json describes ({'; '.join(problems)}); "
            "config.json and model.safetensors come from different runs or were edited"
        )
    model.load_state_dict(weights)


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """model.safetensors, written through lpae.atomic so that it gets the mode of every other run
    file (0o666 less the umask; safetensors alone creates it 0o600)."""
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    write_with(path, lambda tmp: save_file(tensors, str(tmp)))
