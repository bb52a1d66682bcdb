"""Fitted estimators as folders: ``estimator.json`` + ``model.safetensors`` (+ ``arrays.safetensors``).

``LpAutoencoder.save(path)`` and ``LpAnomalyDetector.save(path)`` write a folder in the spirit of
a run directory (lpae.runs), never a pickle:

- ``estimator.json``: ``format`` ("lpae-estimator"), the estimator's class name, the lpae and
  torch versions, its parameters (``get_params()``; a ``random_state`` that is not an int or
  None is stored as None, since a generator's state is not a setting), and every fitted
  attribute that is not an array of numbers: the criterion spec, the resolved model settings,
  the preprocessing statistics, the calibration, the training history, ...;
- ``model.safetensors``: the trained weights (float64, as the estimator infers), nothing else;
- ``arrays.safetensors``: the fitted arrays of the class (the detector's ``decision_scores_``
  and ``labels_``), with their dtypes.

The folder is written under a temporary name and renamed into place (lpae.atomic.staging_dir).
Loading rebuilds the model from the JSON alone, then loads the weights strictly (every tensor
present, with its shape): a folder whose files do not belong together, or that another class
wrote, raises ValueError naming the folder and what to do. Nothing is unpickled or executed:
JSON and safetensors are data only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from sklearn.utils.validation import check_is_fitted

from lpae import __version__, criteria
from lpae.atomic import staging_dir, write_json
from lpae.config import ModelSettings, as_json, read_section
from lpae.data import Preprocessor
from lpae.models import Autoencoder, build_model

FORMAT = "lpae-estimator"
CONFIG_FILE = "estimator.json"
WEIGHTS_FILE = "model.safetensors"
ARRAYS_FILE = "arrays.safetensors"
# Fitted attributes stored as JSON values (each estimator class adds its own in SAVED_VALUES).
BASE_VALUES = (
    "criterion_",
    "n_features_in_",
    "fit_status_",
    "n_iter_",
    "best_epoch_",
    "history_",
    "learned_",
    "calibration_",
    "log_jacobian_",
)

E = TypeVar("E")


def json_param(value: Any) -> Any:
    """A parameter value as JSON: tuples as lists, a random generator as None."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.integer):
        return int(value)
    if value is None or isinstance(value, bool | int | float | str | list):
        return value
    return None  # e.g. a numpy RandomState: its state is not a setting


def save_estimator(estimator: Any, path: Path | str, overwrite: bool = False) -> Path:
    """Write a fitted estimator's folder (module docstring); returns its path."""
    check_is_fitted(estimator)
    path = Path(path)
    if path.exists() and not overwrite:
        raise ValueError(f"{path}: already exists; choose another path or pass overwrite=True")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: exists and is not a folder; choose another path")
    names = (*BASE_VALUES, *estimator.SAVED_VALUES)
    fitted = {name: getattr(estimator, name) for name in names}
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(n) for n in estimator.feature_names_in_]
    config = {
        "format": FORMAT,
        "class": type(estimator).__name__,
        "lpae_version": __version__,
        "torch_version": torch.__version__,
        "params": {name: json_param(value) for name, value in estimator.get_params(deep=False).items()},
        "model": as_json(estimator.model_.settings),
        "preprocessor": estimator.preprocessor_.to_json(),
        "fitted": fitted,
    }
    weights = {k: v.detach().contiguous() for k, v in estimator.model_.state_dict().items()}
    arrays = {
        name: torch.from_numpy(np.ascontiguousarray(getattr(estimator, name)))
        for name in estimator.SAVED_ARRAYS
    }
    with staging_dir(path, overwrite=overwrite) as tmp:
        write_json(tmp / CONFIG_FILE, config)
        save_file(weights, str(tmp / WEIGHTS_FILE))
        if arrays:
            save_file(arrays, str(tmp / ARRAYS_FILE))
    return path


def read_config(path: Path, cls: type) -> dict[str, Any]:
    if not path.is_dir():
        raise ValueError(f"{path}: no such estimator folder (write one with {cls.__name__}.save(path))")
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (path / name).is_file()]
    if missing:
        raise ValueError(f"{path}: not a saved lpae estimator (missing {', '.join(missing)})")
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path / CONFIG_FILE}: not readable JSON ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path / CONFIG_FILE}: not an lpae estimator file")
    saved = config.get("class")
    if saved != cls.__name__:
        raise ValueError(f"{path}: holds a saved {saved}; load it with {saved}.load(path)")
    if cls.SAVED_ARRAYS and not (path / ARRAYS_FILE).is_file():  # type: ignore[attr-defined]
        raise ValueError(f"{path}: not a saved lpae estimator (missing {ARRAYS_FILE})")
    return config


def read_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except (OSError, SafetensorError, ValueError) as error:
        raise ValueError(f"{file}: not a readable safetensors file ({error})") from None


def load_estimator(cls: type[E], path: Path | str) -> E:
    """A fitted estimator of class ``cls`` back from its folder (module docstring)."""
    path = Path(path)
    config = read_config(path, cls)
    version = config.get("lpae_version", "unknown")
    try:
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(config["params"]).items()}
        estimator = cls(**params)
        settings = read_section(ModelSettings, config["model"])
        fitted = dict(config["fitted"])
        n_features = int(fitted["n_features_in_"])
        criterion = criteria.build(str(fitted["criterion_"]), feature_shape=(n_features,))
        model: Autoencoder = build_model((n_features,), settings, criterion).double()
        preprocessor = Preprocessor.from_json(config["preprocessor"])
        if preprocessor.shift.shape != (n_features,):
            raise ValueError(f"preprocessing of shape {preprocessor.shift.shape} for {n_features} features")
    except (KeyError, TypeError, ValueError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise ValueError(
            f"{path / CONFIG_FILE}: written by lpae {version}, which this version ({__version__}) "
            f"cannot read ({detail}); fit and save the estimator again"
        ) from None
    try:
        model.load_state_dict(read_tensors(path / WEIGHTS_FILE), strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(
            f"{path / WEIGHTS_FILE}: does not match {CONFIG_FILE} ({first}); the folder's files do not "
            "belong together: save the estimator again"
        ) from None
    estimator.model_ = model.eval()  # type: ignore[attr-defined]
    estimator.preprocessor_ = preprocessor  # type: ignore[attr-defined]
    for name in (*BASE_VALUES, *cls.SAVED_VALUES):  # type: ignore[attr-defined]
        if name not in fitted:
            raise ValueError(f"{path / CONFIG_FILE}: missing fitted value {name}; save the estimator again")
        setattr(estimator, name, fitted[name])
    if "feature_names_in_" in fitted:
        estimator.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)  # type: ignore[attr-defined]
    if cls.SAVED_ARRAYS:  # type: ignore[attr-defined]
        arrays = read_tensors(path / ARRAYS_FILE)
        for name in cls.SAVED_ARRAYS:  # type: ignore[attr-defined]
            if name not in arrays:
                raise ValueError(f"{path / ARRAYS_FILE}: missing {name}; save the estimator again")
            setattr(estimator, name, arrays[name].numpy())
    return estimator
