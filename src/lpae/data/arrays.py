"""NumPy files (.npy, .npz) and the rules that turn an array into a Dataset.

- ``.npy``: one array of samples. ``.npz``: the array ``x`` (or ``key=NAME``) with labels ``y``
  (or ``label=NAME``) when present; for a Keras-style file with ``x_train``/``y_train``,
  ``key=x_train`` takes its labels from ``y_train`` automatically.
- Arrays are read with ``allow_pickle=False``: an object array is an error, never unpickled.
- Shapes: (N,) is N samples of one feature; (N, D) is a table (NaN, constant-column rules of
  lpae.data.tables); (N, H, W) are grayscale images, stored as (N, 1, H, W); (N, C, H, W) with
  C in {1, 3, 4} is kept, and (N, H, W, C) with C in {1, 3, 4} (channels last) is transposed.
- Images with NaN or infinite pixels are an error naming how many samples, or with
  ``nan="drop"`` those samples are dropped with a warning. Constant pixels are kept (an image's
  border is often constant; its shape must not change).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from lpae.data.dataset import Dataset, DataWarning
from lpae.data.tables import check_nan_policy, check_rows, matrix_to_dataset, source_name

CHANNELS = (1, 3, 4)


def read_npy(path: Path, nan: str) -> Dataset:
    return array_to_dataset(load_array(path), None, str(path), nan)


def read_npz(path: Path, nan: str, key: str | None, label: str | None) -> Dataset:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable .npz archive ({error})") from None
    with archive:
        names = list(archive.files)
        x_name = key or "x"
        if x_name not in names:
            raise ValueError(
                f"{path}: no array {x_name!r}; arrays: {', '.join(names) or 'none'} "
                "(name one with :key=NAME, e.g. data.npz:key=x_train)"
            )
        y_name = label or ("y" + x_name[1:] if x_name.startswith("x") else None)
        if label is not None and label not in names:
            raise ValueError(f"{path}: no label array {label!r}; arrays: {', '.join(names)}")
        x = checked_array(archive, x_name, path)
        y = checked_array(archive, y_name, path) if y_name is not None and y_name in names else None
    if y is not None:
        y = labels_from_array(y, len(x), f"{path}: array {y_name!r}")
    dataset = array_to_dataset(x, y, str(path), nan)
    dataset.info.update({"key": x_name, "label": y_name if y is not None else None})
    return dataset


def load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error):
            raise ValueError(
                f"{path}: holds Python objects (a pickled array); lpae never unpickles, save a numeric array"
            ) from None
        raise ValueError(f"{path}: not a readable .npy file ({error})") from None


def checked_array(archive: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as error:
        if "pickle" in str(error):
            raise ValueError(
                f"{path}: array {name!r} holds Python objects; lpae never unpickles, save a numeric array"
            ) from None
        raise ValueError(f"{path}: array {name!r} cannot be read ({error})") from None


def labels_from_array(y: np.ndarray, n_samples: int, what: str) -> np.ndarray:
    if y.ndim != 1 or len(y) != n_samples:
        raise ValueError(f"{what}: labels must have shape ({n_samples},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what}: labels must be integers, got {y.dtype}")
    return y.astype(np.int64)


def array_to_dataset(x: np.ndarray, y: np.ndarray | None, source: str, nan: str) -> Dataset:
    """A tabular or image Dataset from an array (shape rules in the module docstring)."""
    check_nan_policy(nan)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
        raise ValueError(f"{source}: array of type {x.dtype} is not real numbers")
    if x.ndim == 0 or x.size == 0:
        raise ValueError(f"{source}: the array is empty (shape {x.shape})")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim == 2:
        return matrix_to_dataset(x, y, source, nan)
    images = as_channels_first(x, source)
    return image_dataset(images, y, source, nan)


def as_channels_first(x: np.ndarray, source: str) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); (N, H, W, C) -> (N, C, H, W); (N, C, H, W) kept."""
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] in CHANNELS:
        return x
    if x.ndim == 4 and x.shape[3] in CHANNELS:
        return np.moveaxis(x, 3, 1)
    raise ValueError(
        f"{source}: cannot read an array of shape {x.shape} as samples: expected (N, D), (N, H, W), "
        "(N, C, H, W) or (N, H, W, C) with C in 1, 3, 4"
    )


def image_dataset(images: np.ndarray, y: np.ndarray | None, source: str, nan: str) -> Dataset:
    """Images (N, C, H, W): sample count and NaN rules, constant pixels kept."""
    images = np.asarray(images, dtype=np.float32)
    check_rows(len(images), source)
    bad = ~np.isfinite(images).reshape(len(images), -1).all(axis=1)  # (N,) samples with a bad pixel
    n_bad = int(bad.sum())
    if n_bad:
        n_values = int((~np.isfinite(images)).sum())
        if nan == "error":
            raise ValueError(
                f"{source}: {n_values} NaN or infinite pixel value(s) in {n_bad} image(s); "
                "fix the data or pass --nan drop to drop those images"
            )
        images, y = images[~bad], (None if y is None else y[~bad])
        check_rows(len(images), source)
        warnings.warn(
            f"{source}: dropped {n_bad} image(s) with NaN or infinite pixels", DataWarning, stacklevel=3
        )
    return Dataset(
        source_name(source), images, y, kind="image", info={"source": source, "dropped_rows": n_bad}
    )
