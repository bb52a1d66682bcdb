"""Run a study: plan the grid into the store, train what is unfinished, record, report.

``run_study(grid, out)`` is what `lpae study` does:

1. open (or create) ``out/study.sqlite`` and insert every planned run as pending;
   a folder holding a different grid is refused unless ``resume=True`` (then the runs are added),
   and so is one holding runs of a data file whose content has changed since (lpae.study.files),
   unless ``discard_stale=True`` (then those runs are deleted and trained anew);
2. skip finished rows (done, diverged, failed unless ``retry_failed``); every other row, whether
   pending or left "running" by a killed study, is trained again from scratch into its run folder
   (``train_run(..., overwrite=True)``), which is deterministic per seed on CPU, so a resumed study
   ends with the same rows and metrics as an uninterrupted one;
3. units (single runs, or fused groups when lpae.fused is there and ``fuse`` is on) go to the
   executor, which sends results back; this process alone writes the store, one transaction per
   unit; when the study is interrupted (SIGINT, SIGTERM: lpae.interrupt) the units in flight are
   abandoned (workers killed) and their rows set back to pending, so the store holds finished
   runs and pending ones only;
4. judge the runs' training health (lpae.study.health, into the store) and write the report
   (report.html and report.md);
5. with ``tracking``, log the runs and the report to MLflow or TensorBoard as they finish and at
   the end (lpae.study.tracked); the study folder stays locked until then.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lpae import __version__
from lpae.atomic import staging_dir
from lpae.interrupt import deferred
from lpae.study.execute import Job, Unit, largest_first, make_units
from lpae.study.executors import check_execution, run_units
from lpae.study.files import check_unchanged, stale_runs
from lpae.study.grid import Grid, parse_grid
from lpae.study.health import update_health
from lpae.study.progress import StudyProgress
from lpae.study.store import STORE_NAME, Outcome, Store
from lpae.study.tracked import finish, log_runs, study_tracker
from lpae.tracking import Tracking

RUNS_FOLDER = "runs"
LOCK_NAME = "study.lock"


@dataclass
class StudyResult:
    out: Path
    counts: dict[str, int]
    trained: int
    skipped: int
    report: Path | None = None
    notes: list[str] = field(default_factory=list)
    tracked: str | None = None  # where the runs were logged (lpae.tracking), for messages


def stored_grid(out: Path | str) -> Grid:
    """The grid a study folder was run with (for `lpae study --resume --out DIR`)."""
    with Store(out, create=False) as store:
        text, origin, base = store.meta("grid"), store.meta("origin"), store.meta("base")
    if text is None:
        raise ValueError(f"{out}: the study store holds no grid to resume")
    return parse_grid(text, origin or "stored grid", base)


def run_study(
    grid: Grid,
    out: Path | str,
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: StudyProgress | None = None,
    report: bool = True,
    threads: int | None = None,
    fuse: bool = True,
    discard_stale: bool = False,
    tracking: Tracking | None = None,
) -> StudyResult:
    """Run (or continue) the study of ``grid`` in ``out`` (steps in the module docstring).

    ``discard_stale`` deletes the stored runs of data files whose content changed since they
    were trained (rows and run folders) and trains those runs anew, instead of refusing;
    ``tracking`` logs the runs to an experiment tracker (lpae.tracking) too."""
    out = Path(out)
    check_execution(executor, workers, ray_address, threads)
    progress = progress or StudyProgress()
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if resume and not (out / STORE_NAME).is_file():
        raise ValueError(
            f"--resume: {out} holds no stored study (no {STORE_NAME}); give the folder of an existing "
            "study with --out, or leave out --resume to start this one"
        )
    out.mkdir(parents=True, exist_ok=True)
    with study_lock(out), ExitStack() as later:
        with Store(out) as store:
            stored = [(row.run_id, row.key) for row in store.rows()]
            if discard_stale:
                discard_runs(store, out, stale_runs(stored, grid.files))
            else:
                check_unchanged(stored, grid.files, out)
            check_same_grid(store, grid, out, resume or discard_stale)
            # opened once the study is accepted, before anything trains; closed after the report
            tracker = later.enter_context(study_tracker(tracking, out, grid.name))
            store.set_meta(
                {
                    "grid": grid.text,
                    "origin": grid.origin,
                    "base": grid.base,
                    "name": grid.name,
                    "lpae_version": __version__,
                }
            )
            store.plan((r.run_id, r.key, r.position, r.dir_path) for r in grid.runs)
            remove_stale_staging(out / RUNS_FOLDER)
            finished = ("done", "diverged") if retry_failed else ("done", "diverged", "failed")
            wanted = {r.run_id for r in grid.runs}
            rows = store.rows(wanted)
            todo = {row.run_id: row for row in rows if row.status not in finished}
            jobs = [Job(r.run_id, r.spec, str(inside(out, r.dir_path)), r.fingerprint) for r in grid.runs]
            units = make_units(jobs, set(todo), fuse)
            if workers > 1 or executor == "ray":
                units = largest_first(units)  # so that the longest unit overlaps with the others

            in_flight: set[str] = set()

            def on_submit(unit: Unit) -> None:
                with deferred():
                    store.mark_running(job.run_id for job in unit.jobs)
                    in_flight.update(job.run_id for job in unit.jobs)
                progress.submitted(len(unit.jobs))

            progress.start(len(rows), len(rows) - len(todo))
            try:
                trained = run_units(units, executor, workers, ray_address, on_submit, threads, out)
                with closing(trained) as results:
                    for outcomes in results:
                        with deferred():  # a finished unit is recorded whole, even when a signal comes
                            for outcome in outcomes:
                                if outcome.files is not None:
                                    write_run_files(inside(out, todo[outcome.run_id].run_dir), outcome)
                            store.record(outcomes)
                            in_flight.difference_update(outcome.run_id for outcome in outcomes)
                        progress.finished(outcomes)
                        if tracker is not None:
                            runs = ((o.run_id, o.status, todo[o.run_id].run_dir) for o in outcomes)
                            log_runs(tracker, out, grid.name, runs)
            except BaseException:
                store.release(in_flight)  # abandoned units: pending again, trained on resume
                raise
            finally:
                progress.stop()
            result = StudyResult(
                out, store.counts(), len(todo), len(rows) - len(todo), notes=list(grid.notes)
            )
            rows_now = store.rows()
        if report:
            from lpae.study.report import write_report

            result.report = write_report(out)  # training health included
        else:
            update_health(out)
        if tracker is not None:
            finish(tracker, out, grid.name, rows_now, grid.text, result.report)
            result.tracked = f"{tracker.kind} {tracker.location}"
    return result


@contextmanager
def study_lock(out: Path) -> Iterator[None]:
    """One study process per folder at a time: an exclusive lock that dies with its process."""
    with open(out / LOCK_NAME, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"{out}: another lpae study is running in this folder") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_same_grid(store: Store, grid: Grid, out: Path, resume: bool) -> None:
    stored = {row.key for row in store.rows()}
    if not stored or resume:
        return
    planned = {r.key for r in grid.runs}
    if stored != planned:
        extra = len(planned - stored)
        raise ValueError(
            f"{out}: already holds a study of a different grid ({extra} of this grid's runs are not in it); "
            "choose another --out, or pass --resume to add these runs to it"
        )


def discard_runs(store: Store, out: Path, run_ids: list[str]) -> None:
    """Delete runs' folders (and checkpoints), then their rows; repeating it finishes the job."""
    wanted = set(run_ids)
    for row in store.rows(wanted):
        run_dir = inside(out, row.run_dir)
        for folder in (run_dir, run_dir.with_name(run_dir.name + ".partial")):
            shutil.rmtree(folder, ignore_errors=True)
    store.discard(wanted)


def inside(out: Path, relative: str) -> Path:
    """``out / relative`` resolved, refused unless it lies inside the study folder ``out`` (a run
    folder named by a tampered store or grid must not write anywhere else)."""
    path = (out / relative).resolve()
    if not path.is_relative_to(out.resolve()) or path == out.resolve():
        raise ValueError(
            f"{out}: run folder {relative!r} lies outside the study folder; refusing to write it"
        )
    return path


def write_run_files(run_dir: Path, outcome: Outcome) -> None:
    """Write a run directory that came back as bytes, atomically (staging folder, then rename)."""
    with staging_dir(run_dir, overwrite=True) as tmp:
        for name, data in (outcome.files or {}).items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"run {outcome.run_id}: refusing file name {name!r}")
            (tmp / name).write_bytes(data)
    outcome.files = None


def remove_stale_staging(runs_folder: Path) -> None:
    """Staging folders (``.NAME.tmp-*``) left by a killed study: never a finished run, safe to delete."""
    if runs_folder.is_dir():
        for path in runs_folder.glob(".*.tmp-*"):
            shutil.rmtree(path, ignore_errors=True)
