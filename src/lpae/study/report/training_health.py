"""The "Training health" section, shown before any winner is named, and the verdict's flag notes.

The flags come from the store's ``health`` table, refreshed by lpae.study.health before each
report: ``under_trained`` and ``unstable`` per run (lpae.metrics.health, from its validation
loss history) and ``own_metric_failure`` per criterion and comparison (a criterion that loses
on its own metric to another criterion trained on the same data, model and seeds). The section
lists every flagged criterion with its reasons; ``flag_notes`` tells the verdict which criteria of
a data set rest on flagged runs.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from lpae.criteria import describe
from lpae.metrics.health import TAIL_FRACTION, UNDER_TRAINED_FALL, UNSTABLE_RISE
from lpae.study.health import OWN_METRIC_TOLERANCE, REASONS, REMEDIES
from lpae.study.report.data import StudyData, has_value
from lpae.study.report.page import Section, para, table

FLAGS = tuple(REASONS)  # own_metric_failure, under_trained, unstable, degenerate_fit


def flag_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A flag as booleans (missing: False)."""
    if name not in frame:
        return pd.Series(False, index=frame.index)
    return frame[name].map(lambda value: value is True or value == 1)


def flag_notes(frame: pd.DataFrame) -> dict[str, list[str]]:
    """criterion -> the reasons (in words) its runs in ``frame`` are flagged; unflagged ones left out."""
    notes: dict[str, list[str]] = {}
    for name, words in REASONS.items():
        flagged = frame[flag_column(frame, name)]
        for criterion in dict.fromkeys(flagged["criterion"]):
            notes.setdefault(str(criterion), []).append(words)
    return notes


def rests_on(notes: dict[str, list[str]], names: list[str]) -> str:
    """' Rests on flagged runs: ...' for the named criteria that are flagged (section Training health)."""
    flagged = [f"{name} ({', '.join(notes[name])})" for name in dict.fromkeys(names) if name in notes]
    return f" [Rests on flagged runs: {'; '.join(flagged)}.]" if flagged else ""


def present(value: object) -> bool:
    return value is not None and str(value) not in ("", "nan", "None")


def protocol_label(row: pd.Series) -> str:
    """'one-class 0, contaminated 0.05', or 'all classes, clean'."""
    parts = []
    if present(row.get("normal_classes")):
        parts.append(f"one-class {row['normal_classes']}")
    contaminate = row.get("contaminate")
    if present(contaminate) and float(str(contaminate)) > 0:
        parts.append(f"contaminated {float(str(contaminate)):g}")
    return ", ".join(parts) or "all classes, clean"


def margin_text(criterion: str, margin: object) -> str:
    if not isinstance(margin, int | float) or not math.isfinite(margin):
        return "–"
    try:
        likelihood = describe(criterion).likelihood
    except ValueError:
        likelihood = False
    return f"{margin:+.3g} nats/element" if likelihood else f"{100 * margin:+.1f}%"


def short_spec(spec: str) -> str:
    """A spec with its long numbers (a pinned learned shape, 0.3397557735443115) to 3 digits."""
    return re.sub(r"\d+\.\d{4,}", lambda match: f"{float(match.group()):.3g}", spec)


def seeds_text(runs: pd.DataFrame, name: str) -> str:
    flagged = runs[flag_column(runs, name)]
    if flagged.empty:
        return ""
    return f"{len(flagged)} of {len(runs)}"


def flagged_rows(frame: pd.DataFrame) -> list[list[object]]:
    rows: list[list[object]] = []
    frame = frame.assign(protocol=frame.apply(protocol_label, axis=1))
    for (data, model, protocol, criterion), runs in frame.groupby(
        ["data", "model_label", "protocol", "criterion"], sort=False
    ):
        if not any(flag_column(runs, name).any() for name in FLAGS):
            continue
        loses = flag_column(runs, "own_metric_failure")
        if loses.any():
            first = runs[loses].iloc[0]
            own = f"loses on {short_spec(str(first['own_metric']))} to {first['own_metric_rival']}"
            own += f" ({margin_text(str(criterion), first['own_metric_margin'])})"
        else:
            own = ""
        degenerate = runs[flag_column(runs, "degenerate_fit")]
        bound = ""
        if len(degenerate):
            detail = str(degenerate.iloc[0].get("degenerate_detail") or "")
            bound = f"{len(degenerate)} of {len(runs)}" + (f" ({detail})" if detail else "")
        remedies = [REMEDIES[name] for name in FLAGS if flag_column(runs, name).any()]
        rows.append(
            [
                data,
                model,
                protocol,
                criterion,
                own,
                seeds_text(runs, "under_trained"),
                seeds_text(runs, "unstable"),
                bound,
                "; ".join(remedies),
            ]
        )
    return rows


def health_section(study: StudyData) -> Section:
    section = Section("health", "Training health")
    frame = study.done
    if frame.empty or not any(name in frame for name in (*FLAGS, "own_metric")):
        return section
    section.add(
        para(
            "Before any winner is named: was every criterion optimised well enough for the comparison "
            "to measure the loss, not the optimiser? Own metric: a model trained under a criterion "
            "should be best or tied, on its training rows (what the optimiser was given), on that "
            "criterion's own energy (the loss itself, or a likelihood's NLL at each model's "
            "maximum-likelihood scale, learned shapes pinned) among the criteria trained on the same "
            "data, model and seeds; it loses when it is "
            f"worse by more than {100 * OWN_METRIC_TOLERANCE:g}% of the energy (or "
            f"{OWN_METRIC_TOLERANCE:g} nats per element) on average and, with two seeds or more, on "
            "every seed or with a paired 95% interval over seeds that excludes 0: an optimisation "
            "failure. Under-trained: the best "
            f"validation loss still fell by more than {100 * UNDER_TRAINED_FALL:g}% of its range over the "
            f"last {100 * TAIL_FRACTION:g}% of epochs. Unstable: the last validation loss ended more than "
            f"{100 * UNSTABLE_RISE:g}% of its range above its minimum. At a bound: a learned shape or "
            "scale ended at the edge of its range (no maximum-likelihood value inside it; on quantized "
            "data, the density spike of Theis et al. 2016)."
        )
    )
    checked = frame[has_value(frame["own_metric"])] if "own_metric" in frame else frame.iloc[:0]
    counts = {name: int(flag_column(frame, name).sum()) for name in FLAGS}
    summary = (
        f"{len(frame)} finished runs, {len(checked)} with an own metric checked: "
        f"{counts['own_metric_failure']} lose on their own metric, {counts['under_trained']} under-trained, "
        f"{counts['unstable']} unstable, {counts['degenerate_fit']} with a learned shape or scale at "
        "the bound of its range."
    )
    rows = flagged_rows(frame)
    if not rows:
        section.add(para(summary + " No run is flagged."))
        return section
    section.add(
        para(
            summary + " Flagged criteria, per data set, model and protocol (the verdict marks every "
            "statement whose winner or runner-up is among them):"
        )
    )
    section.add(
        table(
            [
                "data",
                "model",
                "protocol",
                "criterion",
                "own metric",
                "under-trained runs",
                "unstable runs",
                "fits at a bound",
                "what to try",
            ],
            rows,
        )
    )
    return section
