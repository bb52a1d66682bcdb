"""Learned shapes beside the residuals' own fits, and the calibrated likelihood in bits per dimension.

A criterion with a learned shape (gennorm p, Student-t df, Barron alpha) says which loss the
training data asked for; ``residual_gennorm_p`` and ``residual_t_df`` (scipy.stats fits to the
test residuals) say the same from the other side. For a deterministic code y = f(x) and any
decoder p(x|y), I(X; Y) >= H(X) + E[log p(X|Y)] (Vincent et al. 2010): a lower NLL raises the
lower bound on the mutual information between input and code.
"""

from __future__ import annotations

import pandas as pd

from lpae.study.report import plots
from lpae.study.report.data import StudyData
from lpae.study.report.leaderboards import leaderboard_part
from lpae.study.report.metric_info import LEARNED, LIKELIHOOD_METRICS, RESIDUAL_FITS
from lpae.study.report.page import Section, heading, image, para, table
from lpae.study.report.stats import summarize

MI_SENTENCE = (
    "Calibrated NLL in bits per dimension: every model is scored under a generalized normal with "
    "fitted shape and calibrated scale, so the numbers compare across losses. A lower NLL raises "
    "the lower bound on the mutual information between input and code, I(X; Y) >= H(X) + "
    "E[log p(X | Y)] (Vincent et al. 2010)."
)


def mean_text(values: pd.Series) -> str:
    s = summarize(pd.to_numeric(values, errors="coerce"))
    if s.n == 0:
        return ""
    return f"{s.mean:.3g} ± {(s.high - s.mean):.2g}" if s.has_interval else f"{s.mean:.3g}"


def shapes_section(study: StudyData) -> Section:
    section = Section("shapes", "Learned shapes and residual fits")
    for title, frame in study.groups(study.main):
        columns = [c for c in (*LEARNED, *RESIDUAL_FITS) if study.has(c, frame)]
        if not columns:
            continue
        rows = []
        for criterion, runs in frame.groupby("criterion", sort=False):
            cells = [mean_text(runs[c]) for c in columns]
            if any(cells):
                rows.append([criterion, *cells])
        if not rows:
            continue
        section.add(heading(title))
        section.add(table(["criterion", *columns], rows))
        if "learned_p" in columns and "residual_gennorm_p" in columns:
            learned = {
                f"{criterion} (learned p)": summarize(pd.to_numeric(runs["learned_p"], errors="coerce"))
                for criterion, runs in frame.groupby("criterion", sort=False)
                if runs["learned_p"].notna().any()
            }
            fitted = summarize(pd.to_numeric(frame["residual_gennorm_p"], errors="coerce"))
            learned["residuals (gennorm fit, all runs)"] = fitted
            uri = plots.intervals(
                learned,
                "generalized-normal shape p",
                title,
                reference=2.0,
                reference_label="p = 2 (Gaussian)",
            )
            section.add(image(uri, f"learned shape against residual fit for {title}"))
    if section:
        section.parts.insert(
            0,
            para(
                "Mean ± half-width of the 95% interval over seeds. Learned parameters come from the "
                "criterion itself; residual fits are scipy.stats fits to each run's test residuals."
            ),
        )
    return section


def likelihood_section(study: StudyData) -> Section:
    section = Section("likelihood", "Calibrated likelihood (bits per dimension)")
    for title, frame in study.groups(study.main):
        parts = [leaderboard_part(frame, m) for m in LIKELIHOOD_METRICS if study.has(m, frame)]
        parts = [p for p in parts if p is not None]
        if parts:
            section.add(heading(title))
            for part in parts:
                section.add(part)
    if section:
        section.parts.insert(0, para(MI_SENTENCE))
    return section
