"""The study report: one self-contained HTML page (report.html) and a Markdown summary (report.md).

``write_report(out)`` refreshes the training-health flags (lpae.study.health: computed for new
runs, cached in the store), reads the study folder's store (and, for curves and
reconstructions, the run directories) and writes both files atomically. Each section is built
from whatever metric keys the runs have; a section with nothing to show is left out and named
in the overview. The "Training health" section comes first, before any winner is named.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lpae.atomic import write_text
from lpae.study.health import update_health
from lpae.study.report.answer import answer_section
from lpae.study.report.contrast import contrast_section
from lpae.study.report.curves import convergence_section, robustness_section
from lpae.study.report.data import StudyData, load_study
from lpae.study.report.images import reconstructions_section
from lpae.study.report.latent import anomaly_section, latent_section
from lpae.study.report.leaderboards import cross_metric_section, leaderboards_section
from lpae.study.report.page import Part, Section, para, render_html, render_markdown, table
from lpae.study.report.samples import samples_section
from lpae.study.report.shapes import likelihood_section, shapes_section
from lpae.study.report.training_health import health_section
from lpae.study.report.verdict import verdict_section

SECTIONS: tuple[Callable[[StudyData], Section], ...] = (
    answer_section,  # the answer first, each claim marked where it rests on flagged runs
    health_section,
    verdict_section,
    leaderboards_section,
    cross_metric_section,
    shapes_section,
    likelihood_section,
    convergence_section,
    latent_section,
    anomaly_section,
    robustness_section,
    contrast_section,
    reconstructions_section,
    samples_section,
)
HTML_NAME, MARKDOWN_NAME = "report.html", "report.md"
PROBLEM_ROWS = 100  # runs listed per table of problems; a study of 10,000 runs would list thousands
OPEN = (answer_section, health_section)  # shown open in HTML; every other section is folded


def overview(study: StudyData, skipped: list[str]) -> list[Part]:
    table_ = study.table
    counts = table_["status"].value_counts().to_dict() if len(table_) else {}
    unfinished = counts.get("pending", 0) + counts.get("running", 0)
    parts = [
        para(
            f"{len(table_)} runs: {counts.get('done', 0)} done, {counts.get('diverged', 0)} diverged, "
            f"{counts.get('failed', 0)} failed, {unfinished} unfinished. "
            f"Data sets: {', '.join(map(str, dict.fromkeys(table_['data']))) if len(table_) else 'none'}."
        )
    ]
    if skipped:
        parts.append(para("Left out for lack of data in these runs: " + ", ".join(skipped) + ".", "note"))
    return parts


def listed(frame: pd.DataFrame, columns: list[str]) -> list[list[object]]:
    """The first PROBLEM_ROWS rows of ``frame`` as table rows."""
    return frame[columns].head(PROBLEM_ROWS).to_numpy().tolist()


def more_note(frame: pd.DataFrame) -> list[Part]:
    """A note naming how many runs a table of problems leaves out, and where they all are."""
    if len(frame) <= PROBLEM_ROWS:
        return []
    return [
        para(
            f"The first {PROBLEM_ROWS} of {len(frame)} runs are listed; `lpae study export` writes "
            "every run with its status and error.",
            "note",
        )
    ]


def problems_section(study: StudyData) -> Section:
    section = Section("problems", "Diverged and failed runs")
    frame = study.table
    if len(frame) == 0:
        return section
    bad = frame[frame["status"].isin(["diverged", "failed"])]
    if len(bad):
        section.add(para("These runs are left out of every mean above."))
        columns = ["data", "criterion", "seed", "status", "error"]
        section.add(table(columns, listed(bad, columns)))
        section.parts.extend(more_note(bad))
    if "nonfinite_outputs" in frame:
        broken = frame[pd.to_numeric(frame["nonfinite_outputs"], errors="coerce").fillna(0) > 0]
        if len(broken):
            section.add(
                para(
                    "These runs finished training but their decoders emit NaN or infinite values on "
                    "the test rows; their reconstruction errors are infinite or NaN and their other "
                    "metrics are missing."
                )
            )
            section.add(
                table(
                    ["data", "criterion", "seed", "non-finite outputs"],
                    listed(broken, ["data", "criterion", "seed", "nonfinite_outputs"]),
                )
            )
            section.parts.extend(more_note(broken))
    return section


def build_report(out: Path | str) -> tuple[str, str]:
    update_health(out)  # the training-health flags, cached in the store (lpae.study.health)
    study = load_study(out)
    sections, skipped = [], []
    for build in (*SECTIONS, problems_section):
        section = build(study)
        if section:
            section.folded = build not in OPEN  # the detail stays below the answer, folded
            sections.append(section)
        elif build is not problems_section:
            skipped.append(section.title.lower())
    title = f"lpae study: {study.name}"
    intro = overview(study, skipped)
    return render_html(title, intro, sections), render_markdown(title, intro, sections)


def write_report(out: Path | str) -> Path:
    """Write report.html and report.md into the study folder; return the HTML path."""
    out = Path(out)
    page, summary = build_report(out)
    write_text(out / HTML_NAME, page)
    write_text(out / MARKDOWN_NAME, summary)
    return out / HTML_NAME


__all__ = ["build_report", "write_report"]
