"""The metric registry: every key of a run's metrics, declared once beside the code that computes it.

Each module of lpae.metrics calls ``declare`` at import time with a :class:`Metric` per key it
emits (``training.py`` declares the keys training adds to metrics.json). A metric says:

- ``key``: its name in the flat metrics dict and in metrics.json;
- ``label``: a short description in words, as the study report prints it;
- ``unit``: what its values are measured in ("" for accuracies, fractions, shapes and text);
- ``better``: "higher" or "lower" for a score; None for a descriptive value (a fitted shape, a
  count, the status), which the report shows but never ranks;
- ``groups``: the report tables it appears in besides the leaderboards (the constants below).

Declaration order is report order: lpae.metrics imports its modules in the order of
docs/metrics.md, and each module declares its keys in the order its tables should list them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Report groups: where a metric appears besides the leaderboards (lpae.study.report).
CROSS_METRIC = "cross-metric"  # the training criterion x evaluation metric matrix
LIKELIHOOD = "likelihood"  # the calibrated-likelihood leaderboards
LATENT = "latent"  # the latent kNN and probe table
ANOMALY = "anomaly"  # the one-class leaderboards
LEARNED = "learned"  # learned shape and scale parameters, beside the residual fits
RESIDUAL_FIT = "residual fit"  # shapes fitted to the test residuals
GROUPS = (CROSS_METRIC, LIKELIHOOD, LATENT, ANOMALY, LEARNED, RESIDUAL_FIT)

DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class Metric:
    """One metrics key: what it means, its unit, which way is better, and its report groups."""

    key: str
    label: str
    unit: str = ""
    better: Literal["higher", "lower"] | None = None
    groups: tuple[str, ...] = ()
    fraction: bool = False  # a value in [0, 1] (accuracy, AUC): the report's intervals stay inside it

    @property
    def ranked(self) -> bool:
        """True for a score with a direction: the report ranks criteria by it."""
        return self.better is not None

    @property
    def higher_is_better(self) -> bool:
        return self.better == "higher"


METRICS: dict[str, Metric] = {}


def declare(*metrics: Metric) -> None:
    """Add metrics to the registry; a key declared twice, an unknown direction or group is an error."""
    for metric in metrics:
        if metric.key in METRICS:
            raise ValueError(f"metric {metric.key!r} is declared twice; each key is declared once")
        if metric.better is not None and metric.better not in DIRECTIONS:
            raise ValueError(
                f"metric {metric.key!r}: better={metric.better!r}; expected 'higher', 'lower' or None"
            )
        unknown = [group for group in metric.groups if group not in GROUPS]
        if unknown:
            raise ValueError(f"metric {metric.key!r}: unknown group(s) {unknown}; known: {', '.join(GROUPS)}")
        METRICS[metric.key] = metric


def in_group(group: str) -> tuple[str, ...]:
    """The keys of one report group, in declaration order."""
    if group not in GROUPS:
        raise ValueError(f"unknown metric group {group!r}; known: {', '.join(GROUPS)}")
    return tuple(key for key, metric in METRICS.items() if group in metric.groups)
