"""Where units of work run: in this process, in a local process pool, or on a Ray cluster.

Every executor yields the outcomes of each finished unit back to the one process that writes the
results store. ``--workers N`` runs N units at a time with ``max(1, cores // N)`` torch threads
each (``--threads`` overrides), so that workers do not fight over cores.

- ``local`` with one worker: in this process, unit after unit.
- ``local`` with N > 1 workers: a ``ProcessPoolExecutor`` of N spawned processes (spawn rather
  than fork: forking a process whose torch thread pool is already running can hang). Workers
  ignore SIGINT and SIGTERM (a terminal's Ctrl-C reaches the whole process group): when the
  study process is interrupted, or stops early for any reason, it kills its workers and their
  units are abandoned (trained again on resume), never recorded as failed.
- ``ray`` (lpae.study.on_ray): ``ray.init(address=...)`` or a local cluster of N x threads CPUs;
  each unit is a task asking for CPUs that fit the cluster; the run directory's files come back
  in the result, so a worker on another node needs no shared file system. Ray is an optional
  extra (``pip install 'lpae[ray]'``).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

import torch

from lpae.interrupt import ignore_in_worker
from lpae.study.execute import Unit, failed, set_threads, threads_per_worker, train_unit
from lpae.study.on_ray import import_ray, run_on_ray
from lpae.study.store import Outcome

EXECUTORS = ("local", "ray")
PARENT_POLL_SECONDS = 0.5
OnSubmit = Callable[[Unit], None]


def run_units(
    units: Sequence[Unit],
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    on_submit: OnSubmit | None = None,
    threads: int | None = None,
    log_dir: Path | None = None,
) -> Generator[list[Outcome], None, None]:
    """Train ``units``; ``threads`` (torch threads per worker) defaults to max(1, cores // workers)
    (on Ray: to what fits the cluster); a local Ray cluster keeps its logs in ``log_dir/ray-logs``."""
    check_execution(executor, workers, ray_address, threads)
    submit = on_submit or (lambda unit: None)
    if executor == "ray":
        return run_on_ray(units, workers, ray_address, submit, threads, log_dir)
    threads = threads or threads_per_worker(workers)
    if workers == 1:
        return run_here(units, submit, threads)
    return run_in_pool(units, workers, submit, threads)


def check_execution(executor: str, workers: int, ray_address: str | None, threads: int | None = None) -> None:
    """Raise ValueError for settings that cannot run, before a study starts."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; allowed: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {workers}")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {threads}")
    if executor == "ray":
        import_ray()
    elif ray_address is not None:
        raise ValueError("--ray-address needs --executor ray")


def run_here(units: Sequence[Unit], submit: OnSubmit, threads: int) -> Generator[list[Outcome], None, None]:
    previous = torch.get_num_threads()
    set_threads(threads)
    try:
        for unit in units:
            submit(unit)
            yield train_unit(unit)
    finally:
        set_threads(previous)


def worker_init(threads: int, parent: int) -> None:
    """Set the worker's torch threads, ignore SIGINT and SIGTERM (the study process stops its
    workers), and end the worker if the study process dies.

    Pool workers hold both ends of their task queue, so a killed study would otherwise leave
    them waiting forever; a daemon thread watches the parent id instead.
    """
    ignore_in_worker()
    set_threads(threads)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="lpae-parent-watch", daemon=True).start()


def run_in_pool(
    units: Sequence[Unit], workers: int, submit: OnSubmit, threads: int
) -> Generator[list[Outcome], None, None]:
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=worker_init, initargs=(threads, os.getpid())
    )
    queue = list(units)
    running: dict[Future[list[Outcome]], Unit] = {}
    finished = False
    try:
        while queue or running:
            # Keep exactly `workers` units in flight, so "running" in the store means running.
            while queue and len(running) < workers:
                unit = queue.pop(0)
                submit(unit)
                running[pool.submit(train_unit, unit)] = unit
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                unit = running.pop(future)
                try:
                    yield future.result()
                except Exception as error:  # a worker process died (memory, signal)
                    yield failed(unit, f"worker process failed: {type(error).__name__}: {error}")
        finished = True
    finally:
        if not finished:  # interrupted, or closed early: abandon the units in flight
            stop_workers(pool)
        pool.shutdown(wait=True, cancel_futures=True)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's worker processes (they ignore SIGINT and SIGTERM) and reap them."""
    processes = list((pool._processes or {}).values())
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=10)
