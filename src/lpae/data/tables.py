"""Numeric tables from user files: the rules that turn a table or matrix into a tabular Dataset.

Applied in this order, each problem naming the file:

1. a table with columns but no rows is an error;
2. ``label=COLUMN`` takes that column out as the labels (any values; coded 0..K-1 in sorted
   order, the original values kept in ``info["classes"]``); a missing column or missing label
   values are errors;
3. non-numeric columns are dropped with a :class:`DataWarning` naming them; none left is an error;
4. fewer than 3 rows is an error (train, validation and test need one row each);
5. NaN or infinite values (after the cast to float32) are an error that says how many and in which
   columns, unless ``nan="drop"``, which drops those rows with a warning;
6. constant columns carry no information: dropped with a warning; all constant is an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lpae.data.dataset import Dataset, DataWarning

NAN_POLICIES = ("error", "drop")
MIN_ROWS = 3
SHOWN = 8  # at most this many column names in one message


def check_nan_policy(nan: str) -> str:
    if nan not in NAN_POLICIES:
        raise ValueError(f"--nan {nan!r} is not allowed; choose one of {', '.join(NAN_POLICIES)}")
    return nan


def name_list(names: Sequence[object], counts: Sequence[int] | None = None) -> str:
    """'a, b (2), c ... and 5 more': column names for a one-line message."""
    parts = [
        f"{name!s}" if counts is None else f"{name!s} ({count})"
        for name, count in zip(names, counts if counts is not None else names, strict=True)
    ]
    text = ", ".join(parts[:SHOWN])
    return text + (f" and {len(parts) - SHOWN} more" if len(parts) > SHOWN else "")


def table_to_dataset(frame: pd.DataFrame, source: str, label: str | None, nan: str) -> Dataset:
    """A tabular Dataset from a DataFrame read from ``source`` (a path, used in every message)."""
    check_nan_policy(nan)
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
    x = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan).astype(np.float32)  # (N, D)
    dataset = matrix_to_dataset(x, y, source, nan, numeric)
    dataset.info.update({"dropped_non_numeric": other})
    if label is not None:
        dataset.info.update({"label": label, "classes": classes})
    return dataset


def matrix_to_dataset(
    x: np.ndarray, y: np.ndarray | None, source: str, nan: str, columns: Sequence[str] | None = None
) -> Dataset:
    """Rules 4-6 on a numeric matrix x (N, D); ``columns`` names its columns (default 0, 1, ...)."""
    check_nan_policy(nan)
    names = [str(c) for c in columns] if columns is not None else [str(j) for j in range(x.shape[1])]
    x = np.asarray(x, dtype=np.float32)  # overflow beyond float32 becomes inf and is caught below
    check_rows(len(x), source)
    bad = ~np.isfinite(x)  # (N, D)
    n_dropped = 0
    if bad.any():
        per_column = bad.sum(axis=0)
        where = np.flatnonzero(per_column)
        counted = name_list([names[j] for j in where], [int(per_column[j]) for j in where])
        total = int(per_column.sum())
        if nan == "error":
            raise ValueError(
                f"{source}: {total} NaN or infinite value(s) in column(s) {counted}; "
                "fix the file or pass --nan drop to drop those rows"
            )
        keep = ~bad.any(axis=1)
        n_dropped = int((~keep).sum())
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
            stacklevel=3,
        )
    constant = np.flatnonzero(x.min(axis=0) == x.max(axis=0))
    if len(constant) == x.shape[1]:
        raise ValueError(f"{source}: every column is constant; there is nothing to learn")
    if len(constant):
        shown = [f"{names[j]} (= {x[0, j]:g})" for j in constant]
        warnings.warn(f"{source}: dropping constant column(s) {name_list(shown)}", DataWarning, stacklevel=3)
        kept = np.setdiff1d(np.arange(x.shape[1]), constant)
        x = x[:, kept]
        names = [names[j] for j in kept]
    info = {
        "source": source,
        "columns": names,
        "dropped_constant": [str(c) for c in constant],
        "dropped_rows": n_dropped,
    }
    return Dataset(source_name(source), x, y, kind="tabular", info=info)


def check_rows(n_rows: int, source: str) -> None:
    if n_rows == 1:
        raise ValueError(
            f"{source}: has a single data row; need at least {MIN_ROWS} (train, validation and test)"
        )
    if n_rows < MIN_ROWS:
        raise ValueError(
            f"{source}: has only {n_rows} data rows; need at least {MIN_ROWS} (train, validation and test)"
        )


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
