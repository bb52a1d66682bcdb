"""Progress as plain lines, for output that is not a terminal (a log, a pipe, CI).

A progress bar needs a terminal; in a log it shows nothing until the end. :class:`LineRate`
decides when a plain line is worth printing: at the first and last step, then whenever another
tenth of the work is done or LINE_INTERVAL_S seconds have passed, whichever comes first, and
never more often than every MIN_INTERVAL_S seconds (except the last step), so a long job says
where it is about once every 10 s and a short one a few times.
"""

from __future__ import annotations

import math
import time

LINE_INTERVAL_S = 10.0
MIN_INTERVAL_S = 1.0
STEP_FRACTION = 0.1


def clock(seconds: float) -> str:
    """0:07, 12:05 or 1:02:03 (hours, minutes, seconds)."""
    if not math.isfinite(seconds):
        return "?"
    total = int(round(max(seconds, 0.0)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def duration(seconds: float) -> str:
    """A rough duration in words: '17 s', '16 min', '2.5 h'."""
    if not math.isfinite(seconds):
        return "an unknown time"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class LineRate:
    """When to print the next line of a job of ``total`` steps (module docstring)."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.started = time.perf_counter()
        self.last_time = -math.inf
        self.last_done = -1

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def remaining(self, done: int) -> float:
        """Seconds left at the average pace so far (nan before the first step)."""
        return self.elapsed / done * (self.total - done) if done > 0 else math.nan

    def due(self, done: int) -> bool:
        """Whether to print at ``done`` steps; records the print when it says so."""
        now = self.elapsed
        last = done >= self.total
        stepped = done - self.last_done >= STEP_FRACTION * self.total
        waited = now - self.last_time >= LINE_INTERVAL_S
        if last or self.last_done < 0 or ((stepped or waited) and now - self.last_time >= MIN_INTERVAL_S):
            self.last_time, self.last_done = now, done
            return True
        return False
