"""Units of work and how one is trained, wherever it runs.

A unit is either one run or a fused group: runs that share data set, architecture and training
schedule and may train as one batched model (lpae.fused). ``train_unit`` is the only function an
executor calls; it never raises for a failing run: each run's exception becomes an Outcome with
status "failed" and the error's first line, so one bad run cannot stop a study.

Fused training hook: when the module ``lpae.fused`` provides ``train_group(specs, outs,
overwrite=True) -> list[metrics]`` (the same contract as ``lpae.experiment.train_run``, one
metrics dict per member, in order), ``make_units`` groups runs and ``train_unit`` hands each
group to it. Without it every unit is a single run, trained with ``train_run``.

Runs trained somewhere other than the study's machine (Ray) are trained into a temporary folder
and their files travel back with the Outcome (``portable=True``); the study process writes them.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from lpae.experiment import RunSpec, train_run
from lpae.study.store import Outcome

GroupTrainer = Callable[..., list[dict[str, Any]]]
FUSED_MODULE, FUSED_FUNCTION = "lpae.fused", "train_group"
MAX_GROUP = 32


@dataclass(frozen=True)
class Job:
    run_id: str
    spec: RunSpec
    out: str  # the run directory (absolute; ignored when portable)


@dataclass(frozen=True)
class Unit:
    jobs: tuple[Job, ...]


def group_trainer() -> GroupTrainer | None:
    """lpae.fused.train_group when it exists, else None (runs train one by one)."""
    try:
        module = importlib.import_module(FUSED_MODULE)
    except ImportError:
        return None
    found = getattr(module, FUSED_FUNCTION, None)
    return found if callable(found) else None


def group_key(spec: RunSpec) -> str:
    """Runs with the same key may train fused: only criterion, lr and seed-free options differ."""
    train = replace(spec.train, seed=0, lr=0.0)
    return repr(replace(spec, loss="", train=train))


def make_units(jobs: Iterable[Job], fused: bool | None = None) -> list[Unit]:
    jobs = list(jobs)
    if not (group_trainer() is not None if fused is None else fused):
        return [Unit((job,)) for job in jobs]
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(group_key(job.spec), []).append(job)
    return [
        Unit(tuple(members[start : start + MAX_GROUP]))
        for members in groups.values()
        for start in range(0, len(members), MAX_GROUP)
    ]


def set_threads(threads: int) -> None:
    torch.set_num_threads(max(1, threads))


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, cores() // max(1, workers))


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
    staging = Path(tempfile.mkdtemp(prefix="lpae-unit-")) if portable else None
    try:
        outs = [staging / job.run_id if staging else Path(job.out) for job in unit.jobs]
        trainer = group_trainer() if len(unit.jobs) > 1 else None
        if trainer is not None:
            outcomes = train_fused(trainer, unit, outs)
        else:
            outcomes = [train_one(job, out) for job, out in zip(unit.jobs, outs, strict=True)]
        if staging is not None:
            for outcome, out in zip(outcomes, outs, strict=True):
                outcome.files = read_files(out)
        return outcomes
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def train_one(job: Job, out: Path) -> Outcome:
    started = time.time()
    try:
        # resume: a run left half-trained by a killed study continues from its checkpoint
        # (lpae.experiment guarantees the same weights as an uninterrupted run).
        metrics = train_run(job.spec, out, overwrite=True, resume=True)
    except Exception as error:  # a failing run is a result, not the end of the study
        return Outcome(job.run_id, "failed", {}, first_line(error), started, time.time())
    return outcome_from_metrics(job, metrics, started)


def train_fused(trainer: GroupTrainer, unit: Unit, outs: list[Path]) -> list[Outcome]:
    started = time.time()
    try:
        results = trainer([job.spec for job in unit.jobs], outs, overwrite=True)
    except Exception as error:
        message = first_line(error)
        return [Outcome(job.run_id, "failed", {}, message, started, time.time()) for job in unit.jobs]
    return [
        outcome_from_metrics(job, metrics, started) for job, metrics in zip(unit.jobs, results, strict=True)
    ]


def read_files(run_dir: Path) -> dict[str, bytes] | None:
    if not run_dir.is_dir():
        return None
    return {path.name: path.read_bytes() for path in sorted(run_dir.iterdir()) if path.is_file()}
