"""Degenerate fits: a learned shape or scale that ended at the bound of its parametrisation.

A learned parameter pinned at its bound did not find a maximum-likelihood value inside its range:
the likelihood kept improving by pushing it further, which on quantized data is the density spike
of Theis, van den Oord & Bethge (2016) (a scale collapsing onto the lattice, a shape p falling to
its floor) and elsewhere a sign that the family does not fit. A claim resting on such a run is
marked, like one resting on an optimisation failure (lpae.study.health).

Bounds (lpae.criteria): gennorm's p in P_LEARNED_RANGE = (0.1, 10), Barron's alpha in (0, 4),
Student-t's df above DF_FLOOR = 0.1, a learned scale above e^LOG_SCALE_FLOOR = e^-6. A value
counts as at its bound within BOUND_MARGIN of it, relative to the bound (to the range's width for
alpha, whose lower bound is 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lpae.criteria.barron import ALPHA_LEARNED_RANGE
from lpae.criteria.gennorm import P_LEARNED_RANGE
from lpae.criteria.scale import LOG_SCALE_FLOOR
from lpae.criteria.student_t import DF_FLOOR

BOUND_MARGIN = 0.05


def near(value: float, bound: float, unit: float) -> bool:
    return abs(value - bound) <= BOUND_MARGIN * unit


def bounds_hit(metrics: Mapping[str, Any]) -> list[str]:
    """The learned values of a run's metrics.json that sit at a bound, in words (empty: none)."""
    low_p, high_p = P_LEARNED_RANGE
    low_a, high_a = ALPHA_LEARNED_RANGE
    checks = {
        "learned_p": [(low_p, low_p), (high_p, high_p)],
        "learned_alpha": [(low_a, high_a - low_a), (high_a, high_a - low_a)],
        "learned_df": [(DF_FLOOR, DF_FLOOR)],
        "learned_scale": [(math.exp(LOG_SCALE_FLOOR), math.exp(LOG_SCALE_FLOOR))],
    }
    found = []
    for key, bounds in checks.items():
        value = metrics.get(key)
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        for bound, unit in bounds:
            if near(float(value), bound, unit):
                found.append(f"{key} {value:.3g} at its bound {bound:.3g}")
    return found


def degenerate_flags(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``degenerate_fit`` (bool) and ``degenerate_detail`` (words) for the health table, for runs
    with learned values; {} for runs without any (nothing to judge)."""
    if not any(key in metrics for key in ("learned_p", "learned_alpha", "learned_df", "learned_scale")):
        return {}
    hits = bounds_hit(metrics)
    return {"degenerate_fit": bool(hits), "degenerate_detail": "; ".join(hits)}
