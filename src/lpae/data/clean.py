"""A clean reference beside a user's noisy file: ``noisy.csv:clean=clean.csv,noise=student_t``.

With ``clean=PATH`` the file at PATH holds the noise-free signal of the data file, in the same
layout: the same shape for arrays, the same columns (by name; a label column may be absent) for
tables, the same rows in the same order. It becomes ``Dataset.clean``, exactly as a synthetic
set's truth, so every run reports ``clean_l1`` and ``clean_l2`` (lpae.metrics.reconstruction)
against it. Whatever the data file loses on loading, the reference loses too: the label column,
non-numeric and constant columns, and rows dropped by ``nan="drop"`` (``info["kept_rows"]``,
lpae.data.convert). It is read by the reader of its own suffix (a CSV reference for a Parquet
file is fine) and must be complete: a NaN or infinite value in it, another shape or number of
rows, a missing column, or a missing file raises ValueError naming both files.

``noise=FAMILY`` (with ``clean=``) declares the noise family of the data against the reference
(one of :data:`NOISES`), which turns on the study report's known-answer checks as for synthetic
data of that noise (lpae.study.report.verdict); it is recorded in ``info["noise"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lpae.data.convert import Raw, channels_first, is_numeric, name_list
from lpae.data.dataset import Dataset

CLEAN_OPTIONS = {
    "clean": "clean reference file: same shape and row order",
    "noise": "noise family against clean= (gaussian, laplace, student_t, cauchy)",
}
NOISES = ("gaussian", "laplace", "student_t", "cauchy")


@dataclass(frozen=True)
class CleanReference:
    path: Path
    noise: str | None = None


def take_reference(options: dict[str, str], spec: str) -> CleanReference | None:
    """Remove ``clean=`` and ``noise=`` from a file spec's options; the reference they name."""
    clean, noise = options.pop("clean", None), options.pop("noise", None)
    if noise is not None and noise not in NOISES:
        raise ValueError(f"data spec {spec!r}: unknown noise={noise}; allowed: {', '.join(NOISES)}")
    if clean is None:
        if noise is not None:
            raise ValueError(
                f"data spec {spec!r}: noise= describes the data against a clean reference; add clean=PATH"
            )
        return None
    return CleanReference(Path(clean).expanduser(), noise)


def attach_clean(
    dataset: Dataset, raw: Raw, reference: CleanReference, read: Callable[[Path], Raw], source: str
) -> None:
    """Set ``dataset.clean`` from the reference file, aligned with ``dataset.x`` (module docstring)."""
    path = reference.path
    where = f"{source}: clean reference {path}"
    if not path.is_file():
        raise ValueError(f"{where}: no such file")
    found = read(path).values
    n_rows = len(raw.values)
    if isinstance(raw.values, pd.DataFrame):
        values = table_values(found, [str(c) for c in dataset.info["columns"]], n_rows, where, source)
    else:
        values = array_values(found, raw.values, dataset, where)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise ValueError(f"{where}: {bad} NaN or infinite value(s); the clean reference must be complete")
    clean = values[np.asarray(dataset.info.get("kept_rows", np.arange(n_rows)))]
    if clean.shape != dataset.x.shape:  # pragma: no cover - both follow the same rules
        raise ValueError(f"{where}: shape {clean.shape} does not match the data's {dataset.x.shape}")
    dataset.clean = np.ascontiguousarray(clean, dtype=np.float32)
    dataset.info["clean_source"] = str(path)
    if reference.noise is not None:
        dataset.info["noise"] = reference.noise


def table_values(found: object, columns: list[str], n_rows: int, where: str, source: str) -> np.ndarray:
    """The reference table's columns that the data kept, as float32 (n_rows, D)."""
    if not isinstance(found, pd.DataFrame):
        raise ValueError(f"{where}: is an array, but {source} is a table; give a table with its columns")
    found.columns = [str(c) for c in found.columns]
    missing = [c for c in columns if c not in found.columns]
    if missing:
        raise ValueError(f"{where}: lacks column(s) {name_list(missing)} of {source}")
    if len(found) != n_rows:
        raise ValueError(
            f"{where}: has {len(found)} rows, {source} has {n_rows}; "
            "the same rows in the same order are needed"
        )
    text = [c for c in columns if not is_numeric(found[c])]
    if text:
        raise ValueError(f"{where}: column(s) {name_list(text)} are not numeric")
    return found[columns].to_numpy(dtype=np.float64, na_value=np.nan).astype(np.float32)


def array_values(found: object, noisy: np.ndarray, dataset: Dataset, where: str) -> np.ndarray:
    """The reference array in the data's layout: same shape required, then the same views."""
    if not isinstance(found, np.ndarray):
        raise ValueError(f"{where}: is a table, but the data file is an array; give an array of its shape")
    if found.shape != noisy.shape:
        raise ValueError(f"{where}: has shape {found.shape}, the data has {noisy.shape}; they must match")
    if not np.issubdtype(found.dtype, np.number) and found.dtype != np.bool_:
        raise ValueError(f"{where}: array of type {found.dtype} is not real numbers")
    values = found.astype(np.float32)
    if values.ndim > 2:
        return channels_first(values, where)
    kept = [int(c) for c in dataset.info["columns"]]  # constant columns of the data are dropped
    return values.reshape(len(values), -1)[:, kept]
