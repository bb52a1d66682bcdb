"""Units of work and how one is trained, wherever it runs.

A unit is either one run or a fused group: runs that share data set, architecture and training
schedule and may train as one batched model (lpae.fused). ``train_unit`` is the only function an
executor calls; it never raises for a failing run: each run's exception becomes an Outcome with
status "failed" and the error's first line, so one bad run cannot stop a study.

Fused training: ``make_units`` groups runs with ``lpae.fused.fuse_groups`` (which runs may share
a group) and ``train_unit`` hands each group of two or more to ``lpae.fused.train_group`` (the
contract of ``lpae.experiment.train_run``, one metrics dict per member, in order). With
``fuse=False`` every unit is a single run, trained with ``train_run``.

Runs trained somewhere other than the study's machine (Ray) are trained into a temporary folder
and their files travel back with the Outcome (``portable=True``); the study process writes them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lpae.config import RunSpec
from lpae.experiment import train_run
from lpae.fused import fuse_groups, train_group
from lpae.study.files import file_fingerprint, spec_path
from lpae.study.store import Outcome


@dataclass(frozen=True)
class Job:
    run_id: str
    spec: RunSpec
    out: str  # the run directory (absolute; ignored when portable)
    fingerprint: str | None = None  # of the run's data file when planned (lpae.study.files)


@dataclass(frozen=True)
class Unit:
    jobs: tuple[Job, ...]


def make_units(jobs: Sequence[Job], todo: set[str], fuse: bool = True) -> list[Unit]:
    """Units for the runs in ``todo``, out of every planned job of the grid (in grid order).

    Groups are formed over all planned runs and then thinned to the unfinished ones, so a resumed
    study trains each unfinished group with exactly the members it had (a group's rows are written
    in one transaction, so a group is either wholly finished or wholly unfinished).
    """
    if not fuse:
        return [Unit((job,)) for job in jobs if job.run_id in todo]
    groups = fuse_groups([job.spec for job in jobs])
    units = [Unit(tuple(jobs[i] for i in group if jobs[i].run_id in todo)) for group in groups]
    return [unit for unit in units if unit.jobs]


def unit_cost(unit: Unit, sizes: dict[str, int]) -> float:
    """Rough training cost of a unit: members x epochs x elements of its data set (rows x features)."""
    return sum(job.spec.train.epochs * sizes.get(job.spec.data, 0) for job in unit.jobs)


def largest_first(units: Sequence[Unit]) -> list[Unit]:
    """Units ordered by estimated cost, largest first (grid order among equals).

    With several workers, a large unit (a fused MNIST group, say) that started last would run
    alone on one worker's threads while the others sit idle; started first, it overlaps with
    all the small ones (longest-processing-time-first scheduling). Each data set is loaded once
    to learn its size; one that fails to load costs 0 here (its runs fail when they train).
    """
    from lpae.data import load

    sizes: dict[str, int] = {}
    for spec in {job.spec.data: job.spec for unit in units for job in unit.jobs}.values():
        try:
            sizes[spec.data] = load(spec.data, nan=spec.nan, image_size=spec.image_size).x.size
        except (ValueError, TypeError, OSError):
            sizes[spec.data] = 0
    costs = [unit_cost(unit, sizes) for unit in units]
    order = sorted(range(len(units)), key=lambda i: -costs[i])  # stable: grid order among equals
    return [units[i] for i in order]


def set_threads(threads: int) -> None:
    torch.set_num_threads(max(1, threads))


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, cores() // max(1, workers))


def failed(unit: Unit, message: str) -> list[Outcome]:
    """Every run of a unit failed with ``message`` (its worker process or Ray task died)."""
    return [Outcome(job.run_id, "failed", {}, message) for job in unit.jobs]


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".strip()


def outcome_from_metrics(job: Job, metrics: dict[str, Any], started: float) -> Outcome:
    status = str(metrics.get("status", "done"))
    return Outcome(
        job.run_id,
        status if status in ("done", "diverged") else "failed",
        metrics,
        str(metrics.get("reason", "")),
        started,
        time.time(),
    )


def train_unit(unit: Unit, portable: bool = False, threads: int | None = None) -> list[Outcome]:
    """Train every run of a unit; return one Outcome per run, in order."""
    if threads is not None:
        set_threads(threads)
    changed = changed_file(unit)
    if changed is not None:
        return [Outcome(job.run_id, "failed", {}, changed, time.time(), time.time()) for job in unit.jobs]
    staging = Path(tempfile.mkdtemp(prefix="lpae-unit-")) if portable else None
    try:
        outs = [staging / job.run_id if staging else Path(job.out) for job in unit.jobs]
        if len(unit.jobs) > 1:
            outcomes = train_fused(unit, outs)
        else:
            outcomes = [train_one(job, out) for job, out in zip(unit.jobs, outs, strict=True)]
        if staging is not None:
            for outcome, out in zip(outcomes, outs, strict=True):
                outcome.files = read_files(out)
        return outcomes
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def changed_file(unit: Unit) -> str | None:
    """Why a unit must not train: its data file changed since the study was planned (the run
    would be keyed by the old content's fingerprint); None when every file is as planned."""
    for job in unit.jobs:
        if job.fingerprint is None:
            continue
        try:
            now = file_fingerprint(job.spec.data)
        except ValueError as error:
            return first_line(error)
        if now != job.fingerprint:
            return (
                f"ValueError: {spec_path(job.spec.data)} changed while the study ran; restore it and "
                "run the study again with --retry-failed, or start a new study with another --out"
            )
    return None


def train_one(job: Job, out: Path) -> Outcome:
    started = time.time()
    try:
        # resume: a run left half-trained by a killed study continues from its checkpoint
        # (lpae.experiment guarantees the same weights as an uninterrupted run).
        metrics = train_run(job.spec, out, overwrite=True, resume=True)
    except Exception as error:  # a failing run is a result, not the end of the study
        discard(out)
        return Outcome(job.run_id, "failed", {}, first_line(error), started, time.time())
    return outcome_from_metrics(job, metrics, started)


def train_fused(unit: Unit, outs: list[Path]) -> list[Outcome]:
    started = time.time()
    try:
        results = train_group([job.spec for job in unit.jobs], outs, overwrite=True)
    except Exception as error:
        message = first_line(error)
        for out in outs:  # members written before the group failed are failed runs too
            discard(out)
        return [Outcome(job.run_id, "failed", {}, message, started, time.time()) for job in unit.jobs]
    return [
        outcome_from_metrics(job, metrics, started) for job, metrics in zip(unit.jobs, results, strict=True)
    ]


def discard(out: Path) -> None:
    """Remove the run folder of a failed run: a folder left from an earlier attempt, or written
    by a fused group before it failed, must not look like a finished run (its checkpoint in
    ``OUT.partial`` stays for --retry-failed)."""
    if out.is_dir():
        shutil.rmtree(out, ignore_errors=True)


def read_files(run_dir: Path) -> dict[str, bytes] | None:
    if not run_dir.is_dir():
        return None
    return {path.name: path.read_bytes() for path in sorted(run_dir.iterdir()) if path.is_file()}
