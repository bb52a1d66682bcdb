"""Seed statistics for the report: mean and 95% interval per criterion, best and ties.

The interval is Student's t interval of the mean over seeds, mean +- t_{0.975, n-1} s / sqrt(n)
(scipy.stats.t), the usual choice for a handful of seeds; for fractions (accuracies, AUCs) it is
taken on the logit scale and mapped back, so it stays inside [0, 1]. With one seed there is no interval;
the report says so instead of pretending to know. Two criteria are *tied* when their intervals
overlap; the best (by mean, in the metric's direction) and every criterion tied with it are marked.

Runs of different criteria with the same seed share their data split and seed, so their
differences are compared *paired* by seed (``paired_p``: a paired t-test), which separates
criteria whose unpaired intervals still overlap when the seed-to-seed variation is shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from lpae.metrics import registry


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    low: float  # 95% interval; equal to the mean when n < 2
    high: float

    @property
    def has_interval(self) -> bool:
        return self.n >= 2

    def overlaps(self, other: Summary) -> bool:
        return self.low <= other.high and other.low <= self.high


FRACTION_CLIP = 1e-3  # fractions of exactly 0 or 1 are read as this close to the edge on the logit scale


def summarize(values: np.ndarray | pd.Series, fraction: bool = False) -> Summary:
    """Mean and 95% t interval of the finite values. For a ``fraction`` (a value in [0, 1]: an
    accuracy, an AUC) the interval is the t interval of the logits, logit(x) = log(x / (1 - x)),
    mapped back, so that it stays inside (0, 1) (values clipped to [FRACTION_CLIP, 1 -
    FRACTION_CLIP] first), and widened to contain the mean if needed; the mean stays x's."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(n, mean, mean, mean)
    t = float(stats.t.ppf(0.975, n - 1))
    if not fraction:
        half = t * float(x.std(ddof=1)) / math.sqrt(n)
        return Summary(n, mean, mean - half, mean + half)
    z = special.logit(np.clip(x, FRACTION_CLIP, 1 - FRACTION_CLIP))
    half = t * float(z.std(ddof=1)) / math.sqrt(n)
    low, high = (float(special.expit(z.mean() + sign * half)) for sign in (-1, 1))
    return Summary(n, mean, min(low, mean), max(high, mean))


@dataclass(frozen=True)
class Entry:
    criterion: str
    summary: Summary
    best: bool = False
    tied: bool = False  # interval overlaps the best's


def leaderboard(
    frame: pd.DataFrame, metric: str, higher_is_better: bool, by: str = "criterion"
) -> list[Entry]:
    """Criteria ranked by their mean of ``metric`` over seeds; best first, ties marked."""
    if metric not in frame or frame[metric].notna().sum() == 0:
        return []
    known = registry.METRICS.get(metric)
    fraction = known is not None and known.fraction
    summaries = [
        (name, summarize(pd.to_numeric(group[metric], errors="coerce"), fraction))
        for name, group in frame.groupby(by, sort=False)
    ]
    summaries = [(name, s) for name, s in summaries if s.n > 0]
    if not summaries:
        return []
    summaries.sort(key=lambda item: -item[1].mean if higher_is_better else item[1].mean)
    best = summaries[0][1]
    return [
        Entry(str(name), s, best=index == 0, tied=index > 0 and s.overlaps(best))
        for index, (name, s) in enumerate(summaries)
    ]


def relative_gap(better: float, worse: float) -> float:
    """How much better ``better`` is than ``worse``, as a fraction of |worse|."""
    if worse == 0 or not math.isfinite(worse) or not math.isfinite(better):
        return math.nan
    return abs(worse - better) / abs(worse)


def seed_table(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """(seeds x criteria) means of ``metric`` (finite values only), criteria in order of appearance."""
    values = frame.assign(_value=pd.to_numeric(frame[metric], errors="coerce"))
    values = values[np.isfinite(values["_value"])]
    if values.empty:
        return pd.DataFrame()
    order = list(dict.fromkeys(values["criterion"]))
    return values.pivot_table(index="seed", columns="criterion", values="_value", aggfunc="mean")[order]


def paired_p(table: pd.DataFrame, a: str, b: str) -> float:
    """Two-sided paired t-test p-value (scipy.stats.ttest_rel) of criteria a and b over the seeds
    where both have a value, from a :func:`seed_table`; nan with fewer than two such seeds, and 0
    (or 1) for a constant nonzero (or zero) difference, where the t statistic is undefined."""
    if a not in table or b not in table:
        return math.nan
    pair = table[[a, b]].dropna()
    diff = (pair[a] - pair[b]).to_numpy()
    if len(pair) < 2:
        return math.nan
    if bool((diff == diff[0]).all()):
        return 0.0 if diff[0] != 0 else 1.0
    return float(stats.ttest_rel(pair[a], pair[b]).pvalue)
