"""What a file reader gets and returns, and the one conversion of its result into a checked Dataset.

A reader (one per format, registered in lpae.data.files) gets the path and the spec's
:class:`FileOptions` and returns a :class:`Raw`: a table (a pandas frame, with the name of its
label column when ``label=`` was given) or an array of samples (with integer labels when the
format has them). :func:`to_dataset` then applies every rule on user data, in this order, each
problem raising ValueError that names the source:

Tables

1. column names are made text; a repeated name is an error; columns but no rows is an error;
2. ``label=COLUMN`` takes that column out as the labels (any values; coded 0..K-1 in sorted
   order, the original values kept in ``info["classes"]``); a missing column or missing label
   values are errors;
3. non-numeric columns are dropped with a :class:`DataWarning` naming them; none left is an
   error; the rest is cast to a float32 matrix and follows the matrix rules.

Arrays

- an array that is not real numbers (booleans count) or is empty is an error; labels must be
  integers of shape (N,);
- (N,) is N samples of one feature; (N, D) is a matrix; (N, H, W) are grayscale images, stored
  as (N, 1, H, W); (N, C, H, W) with C in {1, 3, 4} is kept, and (N, H, W, C) with C in
  {1, 3, 4} (channels last) is transposed; any other shape is an error.

Matrices (N, D)

4. fewer than 3 rows is an error (train, validation and test need one row each);
5. finite values beyond float32's range are an error that names their columns; NaN or infinite
   values (after the cast to float32) are an error that says how many and in which
   columns, unless ``nan="drop"``, which drops those rows with a warning;
6. constant columns carry no information: dropped with a warning; all constant is an error.

Quantization (every kind): the lattice of the values is detected, or declared or disabled by the
spec's ``quantized=`` option (lpae.data.quantization).

Images (N, C, H, W)

- fewer than 3 images is an error; images with NaN or infinite pixels are an error naming how
  many, or with ``nan="drop"`` those images are dropped with a warning. Constant pixels are kept
  (an image's border is often constant; its shape must not change).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lpae.data.dataset import Dataset, DataWarning
from lpae.data.quantization import from_option

NAN_POLICIES = ("error", "drop")
MIN_ROWS = 3
SHOWN = 8  # at most this many column names in one message
CHANNELS = (1, 3, 4)


@dataclass(frozen=True)
class FileOptions:
    """What a reader is asked for: the spec's options after ':' and the load's image size."""

    label: str | None = None  # label column (tables) or label array (npz)
    key: str | None = None  # the array of samples in an npz
    image_size: int | None = None  # read images at image_size x image_size (folders of mixed sizes)
    quantized: str | None = None  # auto (default), none or a step (lpae.data.quantization)


@dataclass
class Raw:
    """What a reader found in a file, before any check.

    ``values``: a table (label column included) or an array of samples (N, ...).
    ``label_column``: for a table, the column that holds the labels. ``labels``: for an array,
    one label per sample, and ``labels_source``: where they came from (default: the file), for
    messages. ``info``: facts about the file that go into ``Dataset.info`` as they are.
    """

    values: pd.DataFrame | np.ndarray
    label_column: str | None = None
    labels: np.ndarray | None = None
    labels_source: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def to_dataset(raw: Raw, source: str, nan: str, quantized: str | None = None) -> Dataset:
    """The Dataset for what a reader found in ``source`` (a path or a name, used in every message),
    with its lattice detected or as ``quantized`` says (lpae.data.quantization.from_option)."""
    check_nan_policy(nan)
    if isinstance(raw.values, pd.DataFrame):
        dataset = table_dataset(raw.values, raw.label_column, source, nan)
    else:
        x = real_array(raw.values, source)
        y = None if raw.labels is None else integer_labels(raw.labels, len(x), raw.labels_source or source)
        if x.ndim <= 2:
            dataset = matrix_dataset(x.reshape(len(x), -1), y, source, nan)  # (N,) is one feature
        else:
            dataset = image_dataset(channels_first(x, source), y, source, nan)
    dataset.info.update(raw.info)
    dataset.quantization = from_option(quantized, dataset.x, dataset.kind == "image", source)
    return dataset


def check_nan_policy(nan: str) -> str:
    if nan not in NAN_POLICIES:
        raise ValueError(f"--nan {nan!r} is not allowed; choose one of {', '.join(NAN_POLICIES)}")
    return nan


def table_dataset(frame: pd.DataFrame, label: str | None, source: str, nan: str) -> Dataset:
    """Table rules 1-3, then the matrix rules on its numeric columns."""
    frame.columns = [str(column) for column in frame.columns]
    if len(frame.columns) != len(set(frame.columns)):
        repeated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
        raise ValueError(f"{source}: column name(s) {name_list(repeated)} appear more than once")
    if len(frame) == 0:
        raise ValueError(f"{source}: has a header but no data rows")
    y, classes = None, None
    if label is not None:
        if label not in frame.columns:
            raise ValueError(
                f"{source}: label column {label!r} does not exist; columns: {name_list(list(frame.columns))}"
            )
        y, classes = encode_labels(frame[label], source, label)
        frame = frame.drop(columns=[label])

    numeric = [c for c in frame.columns if is_numeric(frame[c])]
    other = [c for c in frame.columns if c not in numeric]
    if not numeric:
        what = f" (non-numeric: {name_list(other)})" if other else ""
        raise ValueError(f"{source}: no numeric columns to use{what}")
    if other:
        examples = [f"{c} (e.g. {first_text(frame[c])!r})" for c in other[:SHOWN]]
        more = f" and {len(other) - SHOWN} more" if len(other) > SHOWN else ""
        warnings.warn(
            f"{source}: dropping non-numeric column(s) {', '.join(examples)}{more}", DataWarning, stacklevel=2
        )
    x = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)  # (N, D), float32 in matrix_dataset
    dataset = matrix_dataset(x, y, source, nan, numeric)
    dataset.info.update({"dropped_non_numeric": other})
    if label is not None:
        dataset.info.update({"label": label, "classes": classes})
    return dataset


def real_array(x: np.ndarray, source: str) -> np.ndarray:
    """``x`` itself when it holds real numbers (or booleans) and is not empty."""
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
        raise ValueError(f"{source}: array of type {x.dtype} is not real numbers")
    if x.ndim == 0 or x.size == 0:
        raise ValueError(f"{source}: the array is empty (shape {x.shape})")
    return x


def integer_labels(y: np.ndarray, n_samples: int, what: str) -> np.ndarray:
    """Labels of shape (n_samples,) as int64; ``what`` names them in the message."""
    if y.ndim != 1 or len(y) != n_samples:
        raise ValueError(f"{what}: labels must have shape ({n_samples},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what}: labels must be integers, got {y.dtype}")
    return y.astype(np.int64)


def channels_first(x: np.ndarray, source: str) -> np.ndarray:
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


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32_range(x: Any, names: Sequence[str], source: str) -> None:
    """Finite values too large for float32 (the working precision) are an error of their own:
    cast, they would become infinite and be reported as infinite values of the file."""
    x = np.asarray(x)
    if x.dtype.kind != "f" or x.dtype.itemsize <= 4:
        return
    with np.errstate(invalid="ignore"):
        beyond = np.isfinite(x) & (np.abs(x) > FLOAT32_MAX)  # (N, D)
    if beyond.any():
        per_column = beyond.sum(axis=0)
        where = np.flatnonzero(per_column)
        counted = name_list([names[int(j)] for j in where], [int(per_column[j]) for j in where])
        raise ValueError(
            f"{source}: {int(per_column.sum())} value(s) beyond float32's range (|x| > 3.4e38, the "
            f"working precision) in column(s) {counted}; rescale those columns or leave them out"
        )


def matrix_dataset(
    x: np.ndarray, y: np.ndarray | None, source: str, nan: str, columns: Sequence[str] | None = None
) -> Dataset:
    """Rules 4-6 on a numeric matrix x (N, D); ``columns`` names its columns (default 0, 1, ...)."""
    names = [str(c) for c in columns] if columns is not None else [str(j) for j in range(x.shape[1])]
    check_float32_range(x, names, source)
    x = np.asarray(x, dtype=np.float32)
    check_rows(len(x), source)
    per_column = nonfinite_counts(x)  # (D,)
    n_dropped = 0
    kept_rows = np.arange(len(x))  # the file's rows that remain (lpae.data.clean aligns with them)
    if per_column.any():
        where = np.flatnonzero(per_column)
        counted = name_list([names[j] for j in where], [int(per_column[j]) for j in where])
        total = int(per_column.sum())
        if nan == "error":
            raise ValueError(
                f"{source}: {total} NaN or infinite value(s) in column(s) {counted}; "
                "fix the file or pass --nan drop to drop those rows"
            )
        keep = np.isfinite(x).all(axis=1)
        n_dropped = int((~keep).sum())
        kept_rows = np.flatnonzero(keep)
        x, y = x[keep], (None if y is None else y[keep])
        if len(x) < MIN_ROWS:
            raise ValueError(
                f"{source}: only {len(x)} row(s) left after dropping {n_dropped} with NaN or infinite "
                f"values in column(s) {counted}; need at least {MIN_ROWS}"
            )
        warnings.warn(
            f"{source}: dropped {n_dropped} of {n_dropped + len(x)} rows with NaN or infinite values "
            f"(column(s) {counted})",
            DataWarning,
            stacklevel=2,
        )
    constant = np.flatnonzero(x.min(axis=0) == x.max(axis=0))
    dropped = [names[j] for j in constant]
    if len(constant) == x.shape[1]:
        raise ValueError(f"{source}: every column is constant; there is nothing to learn")
    if len(constant):
        shown = [f"{names[j]} (= {x[0, j]:g})" for j in constant]
        warnings.warn(f"{source}: dropping constant column(s) {name_list(shown)}", DataWarning, stacklevel=2)
        kept = np.setdiff1d(np.arange(x.shape[1]), constant)
        x = x[:, kept]
        names = [names[j] for j in kept]
    info = {
        "source": source,
        "columns": names,
        "dropped_constant": dropped,
        "dropped_rows": n_dropped,
        "kept_rows": kept_rows,
    }
    return Dataset(source_name(source), x, y, kind="tabular", info=info)


def nonfinite_counts(x: np.ndarray, chunk_rows: int = 65536) -> np.ndarray:
    """NaN or infinite values per column of x (N, D), counted a chunk of rows at a time (no mask of
    the whole matrix; a memory-mapped file is read once)."""
    counts = np.zeros(x.shape[1], dtype=np.int64)
    for start in range(0, len(x), chunk_rows):
        counts += (~np.isfinite(x[start : start + chunk_rows])).sum(axis=0)
    return counts


def image_dataset(images: np.ndarray, y: np.ndarray | None, source: str, nan: str) -> Dataset:
    """Images (N, C, H, W): sample count and NaN rules, constant pixels kept."""
    images = np.asarray(images, dtype=np.float32)
    check_rows(len(images), source)
    bad = ~np.isfinite(images).reshape(len(images), -1).all(axis=1)  # (N,) samples with a bad pixel
    n_bad = int(bad.sum())
    kept_rows = np.flatnonzero(~bad)
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
            f"{source}: dropped {n_bad} image(s) with NaN or infinite pixels", DataWarning, stacklevel=2
        )
    return Dataset(
        source_name(source),
        images,
        y,
        kind="image",
        info={"source": source, "dropped_rows": n_bad, "kept_rows": kept_rows},
    )


def check_rows(n_rows: int, source: str) -> None:
    if n_rows == 1:
        raise ValueError(
            f"{source}: has a single data row; need at least {MIN_ROWS} (train, validation and test)"
        )
    if n_rows < MIN_ROWS:
        raise ValueError(
            f"{source}: has only {n_rows} data rows; need at least {MIN_ROWS} (train, validation and test)"
        )


def name_list(names: Sequence[object], counts: Sequence[int] | None = None) -> str:
    """'a, b (2), c ... and 5 more': column names for a one-line message."""
    parts = [
        f"{name!s}" if counts is None else f"{name!s} ({count})"
        for name, count in zip(names, counts if counts is not None else names, strict=True)
    ]
    text = ", ".join(parts[:SHOWN])
    return text + (f" and {len(parts) - SHOWN} more" if len(parts) > SHOWN else "")


def encode_labels(values: pd.Series, source: str, label: str) -> tuple[np.ndarray, list[str]]:
    """Labels coded 0..K-1 in sorted order of the original values; missing values are an error."""
    missing = int(values.isna().sum())
    if missing:
        raise ValueError(f"{source}: label column {label!r} has {missing} missing value(s)")
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), [str(u) for u in uniques]


def is_numeric(column: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))


def first_text(column: pd.Series) -> str:
    """The first value of a non-numeric column that is not a number (what made it non-numeric)."""
    for value in column.dropna():
        try:
            float(value)
        except (TypeError, ValueError):
            return str(value)
    return str(column.iloc[0])


def source_name(source: str) -> str:
    """A short data-set name: the file or folder name of a path."""
    return source.rstrip("/").rsplit("/", 1)[-1] or source
