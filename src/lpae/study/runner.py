"""Run a study: plan the grid into the store, train what is unfinished, record, report.

``run_study(grid, out)`` is what `lpae study` does:

1. open (or create) ``out/study.sqlite`` and insert every planned run as pending;
   a folder holding a different grid is refused unless ``resume=True`` (then the runs are added);
2. skip finished rows (done, diverged, failed unless ``retry_failed``); every other row, whether
   pending or left "running" by a killed study, is trained again from scratch into its run folder
   (``train_run(..., overwrite=True)``), which is deterministic per seed on CPU, so a resumed study
   ends with the same rows and metrics as an uninterrupted one;
3. units (single runs, or fused groups when lpae.fused is there and ``fuse`` is on) go to the
   executor, which sends results back; this process alone writes the store, one transaction per
   unit;
4. judge the runs' training health (lpae.study.health, into the store) and write the report
   (report.html and report.md).
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lpae import __version__
from lpae.atomic import staging_dir
from lpae.study.execute import Job, Unit, largest_first, make_units
from lpae.study.executors import check_execution, run_units
from lpae.study.grid import Grid, parse_grid
from lpae.study.health import update_health
from lpae.study.progress import StudyProgress
from lpae.study.store import STORE_NAME, Outcome, Store

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


def stored_grid(out: Path | str) -> Grid:
    """The grid a study folder was run with (for `lpae study --resume --out DIR`)."""
    with Store(out, create=False) as store:
        text, origin = store.meta("grid"), store.meta("origin")
    if text is None:
        raise ValueError(f"{out}: the study store holds no grid to resume")
    return parse_grid(text, origin or "stored grid")


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
) -> StudyResult:
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
    with study_lock(out), Store(out) as store:
        check_same_grid(store, grid, out, resume)
        store.set_meta(
            {"grid": grid.text, "origin": grid.origin, "name": grid.name, "lpae_version": __version__}
        )
        store.plan((r.run_id, r.key, r.position, r.dir_path) for r in grid.runs)
        remove_stale_staging(out / RUNS_FOLDER)
        finished = ("done", "diverged") if retry_failed else ("done", "diverged", "failed")
        wanted = {r.run_id for r in grid.runs}
        rows = store.rows(wanted)
        todo = {row.run_id: row for row in rows if row.status not in finished}
        jobs = [Job(r.run_id, r.spec, str(inside(out, r.dir_path))) for r in grid.runs]
        units = make_units(jobs, set(todo), fuse)
        if workers > 1 or executor == "ray":
            units = largest_first(units)  # so that the longest unit overlaps with the others

        def on_submit(unit: Unit) -> None:
            store.mark_running(job.run_id for job in unit.jobs)
            progress.submitted(len(unit.jobs))

        progress.start(len(rows), len(rows) - len(todo))
        try:
            for outcomes in run_units(units, executor, workers, ray_address, on_submit, threads):
                for outcome in outcomes:
                    if outcome.files is not None:
                        write_run_files(inside(out, todo[outcome.run_id].run_dir), outcome)
                store.record(outcomes)
                progress.finished(outcomes)
        finally:
            progress.stop()
        result = StudyResult(out, store.counts(), len(todo), len(rows) - len(todo), notes=list(grid.notes))
    if report:
        from lpae.study.report import write_report

        result.report = write_report(out)  # training health included
    else:
        update_health(out)
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
