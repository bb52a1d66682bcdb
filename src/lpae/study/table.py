"""The study as a tidy table: one row per run, one column per setting and per metric.

Settings come from the run's key (the resolved RunSpec): nested model and training settings are
flattened to their field names (``latent``, ``epochs``, ``lr``; the RunSpec's ``model`` column
is the model kind, such as ae), tuples become comma-joined text (``hidden`` = "64,32"). Metrics
are the scalar entries of metrics.json; a metric whose name clashes with a setting gets the
prefix ``metric_``. The training-health flags of the store's ``health`` table (lpae.study.health:
``under_trained``, ``unstable``, ``own_metric``, ``own_metric_value``, ``own_metric_rival``,
``own_metric_margin``, ``own_metric_failure``) are columns too, as last computed (by the study
or by ``lpae report``). ``export_table`` writes the table as CSV or Parquet, atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lpae.atomic import write_with
from lpae.study.store import Row, Store

FORMATS = ("csv", "parquet")
ROW_COLUMNS = ("run_id", "status", "error", "run_dir", "seconds", "attempts")


def flat_settings(spec: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for name, value in spec.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                settings[inner] = inner_value
        else:
            settings[name] = value
    # The RunSpec's own fields win over same-named nested ones, except `model` (the nested kind).
    for name, value in spec.items():
        if not isinstance(value, dict):
            settings[name] = value
    return {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in settings.items()}


def row_record(row: Row, health: dict[str, Any] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {name: getattr(row, name) for name in ROW_COLUMNS}
    record.update(flat_settings(row.spec))
    record["seed"] = row.spec.get("train", {}).get("seed")
    for name, value in row.metrics.items():
        if name == "status" or isinstance(value, dict | list):
            continue
        record[f"metric_{name}" if name in record else name] = value
    for name, value in (health or {}).items():
        record[name] = value
    return record


def study_table(out: Path | str) -> pd.DataFrame:
    """Every run of the study folder ``out`` as a DataFrame (empty when the store has no rows)."""
    with Store(out, create=False) as store:
        rows, health = store.rows(), store.health()
    return pd.DataFrame.from_records([row_record(row, health.get(row.run_id)) for row in rows])


def export_table(out: Path | str, fmt: str = "csv", path: Path | str | None = None) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    table = study_table(out)
    target = Path(path) if path is not None else Path(out) / f"results.{fmt}"
    if fmt == "csv":
        return write_with(target, lambda tmp: table.to_csv(tmp, index=False))
    return write_with(target, lambda tmp: table.to_parquet(tmp, index=False))
