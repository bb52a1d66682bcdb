"""The answer at the top of the report: per metric family, one sentence per data set and one across
data sets, with the statistics each rests on (Demsar 2006, "Statistical comparisons of
classifiers over multiple data sets", JMLR 7:1-30).

Families and the metric that speaks for each (the first one the runs have): reconstruction
(recon_l2), likelihood (nll_gennorm_bpd), latent usefulness (probe_acc), anomalies
(anomaly_auroc, from the one-class runs).

Within a data set (one data set and model, the verdict's groups): the criterion with the best
mean over seeds against every other, paired by seed (runs of one seed share their split and
initial weights): a two-sided paired t-test per rival (scipy.stats.ttest_rel), the p-values
corrected for the number of rivals by Holm's step-down method (:func:`holm`). The
best *wins* when every corrected p is below ALPHA = 0.05 and every difference favours it; else
the criteria it cannot be told from are named; with fewer than two seeds nothing can be told.

Across data sets (at least MIN_DATA_SETS = 3 groups sharing at least three criteria): each
group's mean per criterion, ranked within the group (1 = best, ties averaged); the Friedman test
on the ranks (scipy.stats.friedmanchisquare) and, when it rejects at ALPHA, the Nemenyi post-hoc
test (scikit-posthocs' posthoc_nemenyi_friedman), drawn as a critical-difference diagram. A
criterion *wins across data sets* when its average rank is best and Nemenyi separates it from
every other; else the criteria Nemenyi cannot separate from the best are named.

Every sentence whose named criteria rest on runs that the training-health check flagged says so
(lpae.study.report.training_health).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from lpae.study.health import REASONS
from lpae.study.report.data import StudyData
from lpae.study.report.metric_info import METRICS
from lpae.study.report.page import Part, Section, esc, fmt, heading, image, para, table
from lpae.study.report.plots import data_uri
from lpae.study.report.stats import paired_p, seed_table
from lpae.study.report.training_health import flag_column, flag_notes, rests_on

ALPHA = 0.05
MIN_DATA_SETS = 3
FAMILIES = (
    ("reconstruction", ("recon_l2",), False),
    ("likelihood", ("nll_gennorm_bpd",), False),
    ("latent usefulness", ("probe_acc",), False),
    ("anomalies", ("anomaly_auroc",), True),  # True: from the one-class runs
)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): sorted ascending, p_(i) times (m - i + 1),
    made monotone by a running maximum and capped at 1. (statsmodels' multipletests gives the same
    and is the test's reference; it runs a full garbage collection on every call.)"""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    scaled = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    adjusted = np.empty_like(p)
    adjusted[order] = scaled
    return adjusted


@dataclass(frozen=True)
class Within:
    """The judgement of one metric within one data set."""

    best: str
    tied: list[str]  # rivals the best cannot be told from (corrected p >= ALPHA, or the wrong sign)
    n_seeds: int
    n_rivals: int
    worst_p: float  # the largest corrected p among the rivals it beats (nan when none)

    @property
    def wins(self) -> bool:
        return self.n_rivals > 0 and not self.tied


def judge_within(frame: pd.DataFrame, metric: str) -> Within | None:
    """Holm-corrected paired t-tests of the best mean against every rival (module docstring)."""
    if metric not in frame or "seed" not in frame:
        return None
    by_seed = seed_table(frame, metric)
    if by_seed.shape[1] == 0:
        return None
    higher = METRICS[metric].higher_is_better
    means = by_seed.mean()
    best = str(means.idxmax() if higher else means.idxmin())
    rivals = [str(c) for c in by_seed.columns if c != best]
    p_values = [paired_p(by_seed, best, rival) for rival in rivals]
    p_values = [1.0 if math.isnan(p) else p for p in p_values]  # below two common seeds: untold
    diffs = [float((by_seed[best] - by_seed[rival]).mean()) for rival in rivals]
    favours = [d > 0 if higher else d < 0 for d in diffs]
    corrected = holm(p_values)
    tied = [r for r, p, good in zip(rivals, corrected, favours, strict=True) if p >= ALPHA or not good]
    beaten = [p for r, p in zip(rivals, corrected, strict=True) if r not in tied]
    return Within(best, tied, int(by_seed[best].notna().sum()), len(rivals), max(beaten, default=math.nan))


def p_text(p: float) -> str:
    """'p = 0.023', or 'p < 0.001' for smaller p-values."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def at_most(p: float) -> str:
    """'<= 0.0064', or '< 0.001' for smaller p-values."""
    return "< 0.001" if p < 0.001 else f"<= {p:.2g}"


def within_sentence(title: str, metric: str, judged: Within, notes: dict[str, list[str]]) -> str:
    if judged.n_rivals == 0:
        return f"{title}: only {judged.best} has {metric}."
    if judged.n_seeds < 2:
        return f"{title}: cannot tell with one seed ({judged.best} has the best {metric})."
    if judged.wins:
        text = (
            f"{title}: {judged.best} wins on {metric} (paired by seed over {judged.n_seeds} seeds, "
            f"Holm-corrected p {at_most(judged.worst_p)} against each of {judged.n_rivals} rivals)."
        )
        return text + rests_on(notes, [judged.best])
    if len(judged.tied) == judged.n_rivals:
        return (
            f"{title}: the data cannot tell the {judged.n_rivals + 1} criteria apart on {metric} "
            f"({judged.best} has the best mean; no paired difference survives Holm's correction)."
        )
    names = ", ".join(judged.tied[:4]) + (f" and {len(judged.tied) - 4} more" if len(judged.tied) > 4 else "")
    text = (
        f"{title}: {judged.best} leads on {metric} and beats {judged.n_rivals - len(judged.tied)} of "
        f"{judged.n_rivals} rivals (Holm-corrected paired tests), but cannot be told apart from {names}."
    )
    return text + rests_on(notes, [judged.best])


@dataclass(frozen=True)
class Across:
    """The judgement of one metric across data sets."""

    ranks: pd.DataFrame  # (data sets x criteria) ranks, 1 = best
    friedman_p: float
    nemenyi: pd.DataFrame | None  # criteria x criteria p-values, when Friedman rejects

    @property
    def average(self) -> pd.Series:
        return self.ranks.mean().sort_values()

    @property
    def top(self) -> list[str]:
        """The best average rank, and every criterion Nemenyi cannot separate from it."""
        best = str(self.average.index[0])
        if self.nemenyi is None:
            return list(map(str, self.average.index))
        return [best] + [str(c) for c in self.average.index[1:] if self.nemenyi.loc[best, c] >= ALPHA]


def block_means(groups: Sequence[tuple[str, pd.DataFrame]], metric: str) -> pd.DataFrame:
    """(groups x criteria) means over seeds, only the criteria every group has."""
    rows = {}
    for title, frame in groups:
        if metric in frame:
            values = pd.to_numeric(frame[metric], errors="coerce")
            rows[title] = values.groupby(frame["criterion"], sort=False).mean()
    return pd.DataFrame(rows).T.dropna(axis=1)


def judge_across(groups: Sequence[tuple[str, pd.DataFrame]], metric: str) -> Across | None:
    """Friedman and Nemenyi over the groups' means (module docstring); None below the minimum."""
    means = block_means(groups, metric)
    if len(means) < MIN_DATA_SETS or means.shape[1] < 3:
        return None
    higher = METRICS[metric].higher_is_better
    ranks = (-means if higher else means).rank(axis=1, method="average")
    friedman_p = float(stats.friedmanchisquare(*(means[c].to_numpy() for c in means.columns)).pvalue)
    nemenyi = None
    if friedman_p < ALPHA:
        import scikit_posthocs  # here, not at import: it imports pyplot (and seaborn) when loaded

        nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(ranks.to_numpy())
        nemenyi.index = nemenyi.columns = list(means.columns)
    return Across(ranks, friedman_p, nemenyi)


def across_sentence(metric: str, judged: Across, notes: dict[str, list[str]]) -> str:
    n_sets, average = len(judged.ranks), judged.average
    lead = f"{average.index[0]} (average rank {average.iloc[0]:.2f} of {len(average)})"
    if judged.nemenyi is None:
        return (
            f"Across {n_sets} data sets: the data cannot tell the criteria apart on {metric} "
            f"(Friedman {p_text(judged.friedman_p)}); the best average rank, {average.iloc[0]:.2f} of "
            f"{len(average)}, is {average.index[0]}'s."
        )
    top = judged.top
    if len(top) == 1:
        text = (
            f"Across {n_sets} data sets: {lead} wins on {metric} (Friedman {p_text(judged.friedman_p)}; "
            "Nemenyi separates it from every other criterion at 5%)."
        )
    else:
        text = (
            f"Across {n_sets} data sets: {lead} leads on {metric} (Friedman {p_text(judged.friedman_p)}), "
            f"but Nemenyi cannot separate it from {', '.join(top[1:])}."
        )
    return text + rests_on(notes, top[:1])


def cd_diagram(average: pd.Series, nemenyi: pd.DataFrame, metric: str, n_sets: int) -> str:
    """The critical-difference diagram (scikit-posthocs), as a PNG data URI."""
    import scikit_posthocs

    figure = Figure(figsize=(8, 0.3 * len(average) + 1.4))
    axes = figure.subplots()
    scikit_posthocs.critical_difference_diagram(average, nemenyi, ax=axes)
    axes.set_title(
        f"{metric}: average rank over {n_sets} data sets (bars join criteria Nemenyi cannot separate)"
    )
    return data_uri(figure)


def rank_colour(rank: float, n_criteria: int) -> str:
    """Green for rank 1 through yellow to red for the last: an HSL hue from 120 to 0 degrees."""
    share = 0.0 if n_criteria <= 1 else (rank - 1) / (n_criteria - 1)
    return f"hsl({120 * (1 - share):.0f}, 70%, 82%)"


def rank_table(ranks: pd.DataFrame, average: pd.Series) -> Part:
    """Criteria (rows, best average rank first) x data sets, each cell its rank, coloured by it in
    HTML; the average rank last."""
    header = ["criterion", *map(str, ranks.index), "average rank"]
    rows = [[name, *ranks[name].round(1).tolist(), round(float(average[name]), 2)] for name in average.index]
    n = len(average)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = ""
    for row in rows:
        cells = [f"<td>{esc(row[0])}</td>"]
        cells += [f'<td style="background:{rank_colour(float(v), n)}">{esc(fmt(v))}</td>' for v in row[1:]]
        body += "<tr>" + "".join(cells) + "</tr>"
    html = f'<table class="ranks"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return Part(html, table(header, rows).markdown)


def family_parts(study: StudyData, family: str, metrics: Sequence[str], one_class: bool) -> list[Part]:
    frame = study.one_class if one_class else study.main
    metric = next((m for m in metrics if study.has(m, frame)), None)
    if metric is None:
        return []
    groups = list(study.groups(frame))
    notes = flag_notes(frame)
    parts: list[Part] = [heading(f"{family.capitalize()} ({metric}: {METRICS[metric].label})")]
    across = judge_across(groups, metric)
    if across is not None:
        parts.append(para(across_sentence(metric, across, notes)))
    elif len(groups) > 1:
        parts.append(
            para(
                f"Across data sets: fewer than {MIN_DATA_SETS} data sets share three criteria, too few "
                "for a test."
            )
        )
    for title, rows in groups:
        judged = judge_within(rows, metric)
        if judged is not None:
            parts.append(para(within_sentence(title, metric, judged, flag_notes(rows))))
    if across is not None:
        average = across.average
        ranks = across.ranks[list(average.index)]
        parts.append(rank_table(ranks, average))
        if across.nemenyi is not None:
            uri = cd_diagram(average, across.nemenyi, metric, len(ranks))
            parts.append(image(uri, f"{metric} critical-difference diagram"))
    return parts


COUNTED = {
    "own_metric_failure": "losing on their own metric",
    "under_trained": "under-trained",
    "unstable": "unstable",
    "degenerate_fit": "at a bound",
}


def health_line(frame: pd.DataFrame) -> str:
    """How many finished runs the training-health check flagged, by reason: said before any winner."""
    counts = {words: int(flag_column(frame, name).sum()) for name, words in COUNTED.items()}
    flagged = int(pd.concat([flag_column(frame, name) for name in REASONS], axis=1).any(axis=1).sum())
    reasons = ", ".join(f"{count} {words}" for words, count in counts.items())
    return (
        f"Training health first: {flagged} of {len(frame)} finished runs are flagged ({reasons}); "
        "every claim below that rests on them says so, and the section Training health lists them."
    )


def answer_section(study: StudyData) -> Section:
    section = Section("answer", "The answer")
    if study.done.empty:
        return section
    section.add(para(health_line(study.done)))
    section.add(
        para(
            "Which criterion is best, per metric family: first across data sets (Friedman test on the "
            "criteria's ranks, Nemenyi post-hoc; Demsar 2006), then per data set (paired by seed, "
            "Holm-corrected t-tests of the best against every rival). A claim that rests on runs the "
            "training-health check flagged says so; that check and the detailed verdict follow."
        )
    )
    for family, metrics, one_class in FAMILIES:
        for part in family_parts(study, family, metrics, one_class):
            section.add(part)
    return section
