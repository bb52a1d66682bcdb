"""Convergence curves (validation L2 and L1 error per epoch, from each run's history.csv) and
robustness curves (error over the training-contamination level).

Validation recon_l1 / recon_l2 are recorded every epoch whatever the training loss, so the curves
compare convergence speed across losses (L2's gradient vanishes near the optimum; L1's does not).
Curves average the seeds epoch by epoch, over the seeds that reached that epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lpae.study.report import plots
from lpae.study.report.data import StudyData
from lpae.study.report.page import Section, heading, image, para, table

HISTORY_COLUMNS = {"val_recon_l2": "validation RMSE", "val_recon_l1": "validation MAE"}


def read_history(study: StudyData, run_dir: str) -> pd.DataFrame | None:
    path = Path(study.out) / str(run_dir) / "history.csv"
    try:
        history = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None
    return history if "epoch" in history else None


def mean_curves(
    histories: dict[str, pd.DataFrame | None], frame: pd.DataFrame, column: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """criterion -> (epochs, mean of ``column`` over its runs' histories); histories by run_dir."""
    lines: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for criterion, runs in frame.groupby("criterion", sort=False):
        found = [histories[str(run_dir)] for run_dir in runs["run_dir"]]
        parts = [h[["epoch", column]] for h in found if h is not None and column in h]
        if parts:
            mean = pd.concat(parts).groupby("epoch")[column].mean()
            lines[str(criterion)] = (mean.index.to_numpy(), mean.to_numpy())
    return lines


def convergence_section(study: StudyData) -> Section:
    section = Section("convergence", "Convergence")
    for title, frame in study.groups(study.main):
        # each history.csv read once for both panels (a study of 10,000 runs reads 10,000 files)
        histories = {str(run_dir): read_history(study, str(run_dir)) for run_dir in frame["run_dir"]}
        panels = [(label, mean_curves(histories, frame, column)) for column, label in HISTORY_COLUMNS.items()]
        panels = [(label, lines) for label, lines in panels if lines]
        if panels:
            section.add(heading(title))
            section.add(image(plots.curves(panels, title), f"convergence curves for {title}"))
    if section:
        section.parts.insert(
            0,
            para(
                "Validation error per epoch, whatever the training loss (mean over seeds). A loss whose "
                "curve drops sooner reaches a given error in fewer epochs."
            ),
        )
    return section


def robustness_metric(frame: pd.DataFrame) -> str | None:
    for metric in ("clean_l2", "recon_l2", "recon_l1"):
        if metric in frame and frame[metric].notna().any():
            return metric
    return None


def robustness_section(study: StudyData) -> Section:
    section = Section("robustness", "Robustness to contaminated training data")
    frame = study.robustness
    if "contaminate" not in frame or pd.to_numeric(frame["contaminate"], errors="coerce").nunique() < 2:
        return section
    for title, runs in study.groups(frame):
        metric = robustness_metric(runs)
        if metric is None:
            continue
        levels_seen = sorted(pd.to_numeric(runs["contaminate"]).unique())
        lines: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        rows = []
        for criterion, by_criterion in runs.groupby("criterion", sort=False):
            values = pd.to_numeric(by_criterion[metric], errors="coerce")
            means = values.groupby(pd.to_numeric(by_criterion["contaminate"])).mean().reindex(levels_seen)
            lines[str(criterion)] = (100 * means.index.to_numpy(), means.to_numpy())
            rows.append([criterion, *means.to_numpy()])
        section.add(heading(title))
        section.add(
            image(
                plots.curves([(metric, lines)], title, xlabel="contaminated training rows (%)"),
                f"robustness for {title}",
            )
        )
        section.add(table(["criterion", *[f"{100 * c:g}%" for c in levels_seen]], rows))
    if section:
        section.parts.insert(
            0,
            para(
                "Test error on the clean test split after training on data with a fraction of rows replaced "
                "by gross outliers; a flat curve is a robust criterion."
            ),
        )
    return section
