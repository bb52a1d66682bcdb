"""The study as the report sees it: the tidy table with labels and the subsets each section uses.

- ``main``: finished runs trained on all classes without contamination (the leaderboards);
- ``one_class``: runs with ``normal_classes`` (anomaly detection);
- ``robustness``: runs on all classes, over every contamination level.

Diverged and failed runs are left out of every mean and listed in the overview instead.
Runs group by data set and model configuration (``model_label``); criteria keep grid order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lpae.config import ModelSettings
from lpae.study.store import Store
from lpae.study.table import study_table


def model_label(row: pd.Series) -> str:
    """'ae mlp 64-8', plus every other model option that differs from its default (beta=4)."""
    defaults = dataclasses.asdict(ModelSettings())
    hidden = str(row.get("hidden") or "").replace(",", "-")
    parts = [
        str(row.get("model", "ae")),
        str(row.get("arch", "mlp")),
        "-".join(p for p in (hidden, str(row.get("latent"))) if p),
    ]
    for option, default in defaults.items():
        if option in ("model", "arch", "hidden", "latent") or option not in row:
            continue
        value = row[option]
        missing = value is None or (isinstance(value, float) and pd.isna(value))
        if not missing and value != default:
            parts.append(f"{option}={value}")
    return " ".join(parts)


def has_value(series: pd.Series) -> pd.Series:
    return series.notna() & (series.astype(str) != "")


@dataclass
class StudyData:
    out: Path
    name: str
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def done(self) -> pd.DataFrame:
        return self.table[self.table["status"] == "done"] if len(self.table) else self.table

    def _all_classes(self, frame: pd.DataFrame) -> pd.Series:
        if "normal_classes" in frame:
            return ~has_value(frame["normal_classes"])
        return pd.Series(True, index=frame.index)

    @property
    def main(self) -> pd.DataFrame:
        frame = self.done
        keep = self._all_classes(frame)
        if "contaminate" in frame:
            keep &= pd.to_numeric(frame["contaminate"], errors="coerce").fillna(0) == 0
        return frame[keep]

    @property
    def one_class(self) -> pd.DataFrame:
        frame = self.done
        return frame[~self._all_classes(frame)]

    @property
    def robustness(self) -> pd.DataFrame:
        frame = self.done
        return frame[self._all_classes(frame)]

    def groups(self, frame: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
        """(title, rows) per data set and model configuration, in grid order."""
        if frame.empty:
            return
        several_models = self.table["model_label"].nunique() > 1
        for (data, model), rows in frame.groupby(["data", "model_label"], sort=False):
            yield (f"{data} · {model}" if several_models else str(data)), rows

    def has(self, metric: str, frame: pd.DataFrame | None = None) -> bool:
        frame = self.main if frame is None else frame
        return metric in frame and bool(frame[metric].notna().any())


def load_study(out: Path | str) -> StudyData:
    out = Path(out)
    with Store(out, create=False) as store:
        name = store.meta("name") or out.name
    table = study_table(out)  # in grid order
    if len(table):
        table["criterion"] = table["loss"].astype(str)
        table["model_label"] = table.apply(model_label, axis=1)
    return StudyData(out, name, table)
