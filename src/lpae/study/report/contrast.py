"""Relative contrast of L_k distances on the raw data and on latent codes (Aggarwal et al. 2001).

For each data set, every test row is a query against the other test rows (lpae.contrast):
RC_k = (Dmax_k - Dmin_k) / Dmin_k, averaged over queries, for k in {0.5, 1, 2, inf}, on the
preprocessed raw features and on the latent codes of each criterion's lowest-seed run. Higher
contrast means nearest and farthest neighbours are easier to tell apart under that metric. At
most MAX_POINTS test rows are used (a seeded subsample), so the section stays quick.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lpae.contrast.data import Features, analyse
from lpae.contrast.distances import k_label
from lpae.study.report import plots
from lpae.study.report.data import StudyData
from lpae.study.report.page import Section, heading, image, para, table

KS = (0.5, 1.0, 2.0, math.inf)
MAX_POINTS = 500


def subsample(features: Features, seed: int = 0) -> Features:
    if len(features.x) <= MAX_POINTS:
        return features
    rows = np.sort(np.random.default_rng(seed).choice(len(features.x), MAX_POINTS, replace=False))
    return Features(features.name, features.x[rows], None if features.y is None else features.y[rows])


def mean_contrast(features: Features) -> list[float]:
    """Mean relative contrast over queries, one value per k in KS (nan when undefined)."""
    rows = analyse(subsample(features), KS, n_neighbors=0).report["rows"]
    return [math.nan if r["rel_contrast"] is None else float(r["rel_contrast"]) for r in rows]


def group_contrast(study: StudyData, frame: pd.DataFrame) -> dict[str, list[float]]:
    """{'raw features': [...], criterion: [...]} for one data set and model."""
    from lpae.contrast.latent import run_features  # loads models: only when a report is drawn

    lines: dict[str, list[float]] = {}
    first = frame.sort_values("seed", kind="stable").groupby("criterion", sort=False).head(1)
    for _, row in first.iterrows():
        try:
            latent, raw = run_features(Path(study.out) / str(row["run_dir"]))
        except (OSError, ValueError):
            continue  # run folder missing or unreadable: leave this criterion out
        if "raw features" not in lines:
            lines["raw features"] = mean_contrast(raw)
        lines[f"{row['criterion']} (latent)"] = mean_contrast(latent)
    return lines


def contrast_section(study: StudyData) -> Section:
    section = Section("contrast", "Distance concentration")
    labels = [k_label(k) for k in KS]
    for title, frame in study.groups(study.main):
        lines = group_contrast(study, frame)
        if len(lines) < 2:
            continue
        x = np.arange(len(KS), dtype=np.float64)
        curves = {name: (x, np.asarray(values)) for name, values in lines.items()}
        uri = plots.curves(
            [("mean relative contrast", curves)], title, "metric L_k", log_y=True, xticks=labels
        )
        section.add(heading(title))
        section.add(image(uri, f"relative contrast for {title}"))
        section.add(
            table(["features", *[f"RC {label}" for label in labels]], [[n, *v] for n, v in lines.items()])
        )
    if section:
        section.parts.insert(
            0,
            para(
                "Relative contrast (Dmax - Dmin) / Dmin of L_k distances between test rows, on the raw "
                "features and on each criterion's latent codes (Aggarwal, Hinneburg & Keim 2001): small and "
                "fractional k keep more contrast as dimension grows."
            ),
        )
    return section
