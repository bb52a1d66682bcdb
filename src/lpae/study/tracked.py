"""A study's runs and report in an experiment tracker (lpae.tracking), for `lpae study --track`.

The experiment is named after the study, and each lpae run is one tracked run, keyed by its run
id, named after its run folder and tagged ``lpae.study`` and ``lpae.run_dir``. The runner opens the
tracker before anything trains (a bad tracking URI stops the study before its first run) and

1. logs each unit's finished runs (done or diverged; a failed run has no folder) once the unit is
   recorded in the store, so the experiment fills while the study runs;
2. at the end, after the report: logs every finished run of the store that the experiment lacks
   or holds with other results (the runs of earlier `lpae study` calls, a resumed or retried
   study; lpae.tracking.base stamps), removes the tracked runs whose lpae run the store no
   longer has (``--discard-stale``), and puts report.html, report.md and the grid (grid.toml) on
   the study-level record (with ``--no-report`` that record keeps what the last report put there).

So a study ends with exactly one tracked run per finished lpae run, however often it was
interrupted and resumed; a tracked run whose logging was interrupted is logged anew.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lpae.study.store import Row
from lpae.tracking import Tracker, Tracking, open_tracker, track_run

LOGGED = ("done", "diverged")


@contextmanager
def study_tracker(tracking: Tracking | None, out: Path, name: str) -> Iterator[Tracker | None]:
    """The study's tracker (None without tracking), closed as complete unless the study raised."""
    if tracking is None:
        yield None
        return
    tracker = open_tracker(tracking, out, name, group=name)
    try:
        yield tracker
    except BaseException:
        tracker.close(complete=False)
        raise
    tracker.close()


def log_runs(tracker: Tracker, out: Path, study: str, runs: Iterable[tuple[str, str, str]]) -> int:
    """Log finished runs given as (run id, status, run folder relative to ``out``) unless logged
    already with their current results; returns how many were logged."""
    logged = 0
    for run_id, status, run_dir in runs:
        folder = out / run_dir
        if status not in LOGGED or not (folder / "metrics.json").is_file():
            continue
        tags = {"lpae.study": study, "lpae.run_dir": run_dir}
        logged += track_run(tracker, folder, Path(run_dir).name, tags, key=run_id)
    return logged


def finish(
    tracker: Tracker, out: Path, study: str, rows: list[Row], grid_text: str, report: Path | None
) -> int:
    """Step 2 of the module docstring (``report``: the report.html this call wrote, if any);
    returns how many runs it logged."""
    logged = log_runs(tracker, out, study, ((r.run_id, r.status, r.run_dir) for r in rows))
    kept = {r.run_id for r in rows if r.status in LOGGED}
    tracker.forget(sorted(tracker.keys() - kept))
    if report is None:  # --no-report: the study-level record keeps what the last report put there
        return logged
    files = [path for path in (report, report.with_suffix(".md")) if path.is_file()]
    with tempfile.TemporaryDirectory(prefix="lpae-track-") as scratch:
        grid = Path(scratch) / "grid.toml"
        grid.write_text(grid_text, encoding="utf-8")
        tracker.log_group([*files, grid])
    return logged
