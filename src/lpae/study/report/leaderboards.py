"""Leaderboards (criteria ranked under each metric, per data set) and the cross-metric heatmap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lpae.study.report import plots
from lpae.study.report.data import StudyData
from lpae.study.report.metric_info import ANOMALY_METRICS, CROSS_METRICS, METRICS, direction_word
from lpae.study.report.page import Part, Section, heading, image, para, table
from lpae.study.report.stats import Entry, leaderboard


def interval_text(entry: Entry) -> str:
    s = entry.summary
    return f"[{s.low:.4g}, {s.high:.4g}]" if s.has_interval else "one seed"


def leaderboard_part(frame: pd.DataFrame, metric: str) -> Part | None:
    info = METRICS[metric]
    entries = leaderboard(frame, metric, info.higher_is_better)
    if not entries:
        return None
    rows = [
        [
            e.criterion,
            e.summary.mean,
            interval_text(e),
            e.summary.n,
            "best" if e.best else "tie" if e.tied else "",
        ]
        for e in entries
    ]
    classes = ["best" if e.best else "tie" if e.tied else "" for e in entries]
    part = table(
        [f"{metric}: {info.label} ({direction_word(metric)})", "mean", "95% interval", "seeds", ""],
        rows,
        classes,
    )
    return part


def leaderboards_section(study: StudyData) -> Section:
    section = Section("leaderboards", "Leaderboards")
    section.add(
        para(
            "Per data set, every criterion under every metric: mean over seeds, 95% t-interval, the best "
            "marked and every criterion whose interval overlaps the best's marked as a tie."
        )
    )
    for title, frame in study.groups(study.main):
        parts = [leaderboard_part(frame, m) for m in METRICS if m not in ANOMALY_METRICS]
        parts = [p for p in parts if p is not None]
        if parts:
            section.add(heading(title))
            for part in parts:
                section.add(part)
    return section if len(section.parts) > 1 else Section("leaderboards", "Leaderboards")


def cross_metric_section(study: StudyData) -> Section:
    section = Section("cross-metric", "Training criterion x evaluation metric")
    for title, frame in study.groups(study.main):
        metrics = [m for m in CROSS_METRICS if study.has(m, frame)]
        criteria = list(dict.fromkeys(frame["criterion"]))
        if not metrics or len(criteria) < 2:
            continue
        means = frame.groupby("criterion", sort=False)[metrics].agg(
            lambda s: pd.to_numeric(s, errors="coerce").mean()
        )
        values = means.reindex(criteria).to_numpy(dtype=np.float64)  # (criteria, metrics)
        higher = [METRICS[m].higher_is_better for m in metrics]
        uri = plots.heatmap(values, criteria, metrics, higher, title)
        section.add(heading(title))
        section.add(image(uri, f"cross-metric matrix for {title}"))
        rows = [[c, *values[i]] for i, c in enumerate(criteria)]
        section.add(table(["criterion", *metrics], rows))
    if section:
        section.parts.insert(
            0,
            para(
                "Each trained model scored under every metric (means over seeds). Colour is the ratio to "
                "the column's best, so a row that stays light wins on metrics it was not trained for too "
                "(Zhao et al. 2017 found L1-trained networks beating L2-trained ones on L2 error)."
            ),
        )
    return section
