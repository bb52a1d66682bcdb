"""Run directories: the files a trained model lives in, written atomically and read without pickle.

A run directory holds

- ``config.json``: every resolved setting (data spec, split, preprocessing statistics, model,
  criterion spec, training settings, lpae and torch versions);
- ``model.safetensors``: the weights (criterion parameters included), nothing else;
- ``history.csv``: one row per epoch (train loss, validation loss, validation recon_l1 / recon_l2);
- ``metrics.json``: ``status`` and the evaluation metrics.

A run is first written under a temporary sibling name and renamed into place, so an interrupted
write never leaves a half-written run where a finished one is expected.

While a run trains, its checkpoint lives in the sibling folder ``OUT.partial/`` (``config.json``
and ``checkpoint.safetensors``, see lpae.checkpoint): a stable place that ``--resume`` finds, and
that :func:`check_run_dir` never accepts as a finished run. It is removed once ``OUT`` is in place.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lpae import criteria
from lpae.data import Dataset, Preprocessor, load, split_indices
from lpae.models import Autoencoder, ModelSettings, build_model
from lpae.protocol import contaminate, normal_rows

RUN_FILES = ("config.json", "model.safetensors", "metrics.json")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=False, allow_nan=True)
            handle.write("\n")
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: Path) -> Any:
    with open(path) as handle:
        return json.load(handle)


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    columns = list(history[0]) if history else ["epoch", "train_loss", "val_loss"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


@contextmanager
def staging_dir(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out``, on error it vanishes."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: already exists (choose another --out, or pass --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, 0o777 & ~current_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


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
    config = read_json(path / "config.json")
    if not isinstance(config, dict) or config.get("format") != "lpae-run":
        raise ValueError(f"{path}: config.json is not an lpae run configuration")
    return path


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


def prepare_data(config: dict[str, Any], dataset: Dataset | None = None) -> PreparedData:
    """Load (unless given), split and preprocess data exactly as the run's config says."""
    data = config["data"]
    if dataset is None:
        dataset = load(data["spec"], nan=data.get("nan", "error"), image_size=data.get("image_size"))
    splits = split_indices(
        len(dataset.x),
        data["split_seed"],
        dataset.y,
        data["val_fraction"],
        data["test_fraction"],
        dataset.test_rows,
    )
    normal = data.get("normal_classes")  # one-class protocol: train and validate on these only
    train = normal_rows(splits.train, dataset.y, normal)
    val = normal_rows(splits.val, dataset.y, normal)
    prepared = PreparedData(
        dataset, Preprocessor.from_json(data["preprocess"]), train, val, splits.test, all_train=splits.train
    )
    fraction = float(data.get("contaminate", 0.0))
    if fraction > 0:
        seed = int(data.get("contaminate_seed", data["split_seed"]))
        prepared.train_x, prepared.train_outliers = contaminate(dataset.x[train], fraction, seed)
    return prepared


def model_settings(config: dict[str, Any]) -> ModelSettings:
    """The model settings of a config (older configs lack the newer fields: defaults fill them)."""
    known = {f.name for f in fields(ModelSettings)}
    m = {key: value for key, value in config["model"].items() if key in known}
    for key in ("hidden", "image_shape"):
        if m.get(key) is not None:
            m[key] = tuple(m[key])
    return ModelSettings(**m)


def build_from_config(config: dict[str, Any]) -> Autoencoder:
    criterion = criteria.build(config["loss"], feature_shape=tuple(config["data"]["shape"]))
    return build_model(config["data"]["shape"], model_settings(config), criterion)


@dataclass
class Run:
    """A finished run loaded back from its directory."""

    path: Path
    config: dict[str, Any]
    model: Autoencoder
    metrics: dict[str, Any]


def load_run(path: Path | str) -> Run:
    """Rebuild a run's model from config.json and model.safetensors alone."""
    path = check_run_dir(Path(path))
    config = read_json(path / "config.json")
    model = build_from_config(config)
    model.load_state_dict(load_file(path / "model.safetensors"))
    model.eval()
    return Run(path, config, model, read_json(path / "metrics.json"))


def save_weights(model: torch.nn.Module, path: Path) -> None:
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
