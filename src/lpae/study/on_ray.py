"""The Ray executor: a local cluster of its own, or a running one it joins, and CPU requests that fit.

Each unit of work is a Ray task asking for ``cpus`` CPUs (``task_cpus``), fitted to the cluster:

- started here (no ``--ray-address``): a one-node cluster of ``workers x threads`` CPUs, so each
  task asks for its ``threads`` and exactly ``workers`` tasks run at a time;
- joined (``--ray-address``, or Ray already initialised by the caller): with ``--threads T`` each
  task asks for T CPUs and a cluster without a node of T CPUs is refused (ValueError, one line);
  without it, each task asks for ``min(C / workers, largest node)`` CPUs (C: the cluster's CPUs),
  fractional where needed (Ray counts CPUs to 1e-4), and trains on ``max(1, floor(cpus))`` threads.

A task Ray cannot place waits forever in Ray; so while results are awaited, the alive nodes are
checked every few seconds, and when none has the CPUs a task asks for during ``INFEASIBLE_SECONDS``
(nodes left the cluster, and no autoscaler brought one back) the study stops with a ValueError.

The local cluster listens on 127.0.0.1 only (Ray resolves a node address of 127.0.0.1 to the
machine's address unless its cluster mode is off: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, Ray's
own switch for single-machine use), starts no dashboard process (Ray 2.x starts its head
"dashboard" API server even with ``include_dashboard=False``; here that step is skipped, as on a
minimal Ray install), sends no usage statistics, and writes its logs (the driver's Ray log lines
too, never the terminal) under a short temporary folder (Unix socket paths are limited to 107
bytes) that is moved into ``OUT/ray-logs/`` when the cluster stops, or by the next study in that
folder when the study process was killed. A killed study process takes most of its cluster with
it (Ray starts the cluster's processes with PR_SET_PDEATHSIG on Linux; workers end with their
raylet), but Ray's two node agents wait about a minute before they exit: their ids are kept in
``OUT/ray-logs/cluster.json`` and the next study in that folder kills those still alive.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from lpae.interrupt import as_interrupted
from lpae.study.execute import Unit, failed, train_unit
from lpae.study.store import Outcome

LOG_FOLDER = "ray-logs"
CLUSTER_RECORD = "cluster.json"  # inside LOG_FOLDER, while a local cluster runs: its temp folder, processes
TEMP_PREFIX = "lpae-ray-"
CPU_STEP = 1e-4  # Ray's resource granularity
WAIT_SECONDS = 2.0
INFEASIBLE_SECONDS = 60.0
LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError("the ray executor needs Ray: pip install 'lpae[ray]'") from None
    return ray


def node_cpus(nodes: Sequence[dict[str, Any]]) -> list[float]:
    """CPUs of each alive node, from ``ray.nodes()``."""
    return [float(n.get("Resources", {}).get("CPU", 0.0)) for n in nodes if n.get("Alive", False)]


def task_cpus(cpus: Sequence[float], workers: int, threads: int | None) -> float:
    """CPUs each task asks for on a cluster whose alive nodes have ``cpus`` (module docstring).

    ``threads``: the --threads given, or None. Raises ValueError for a request no node can meet."""
    largest = max(cpus, default=0.0)
    if largest <= 0:
        raise ValueError(
            "the Ray cluster has no CPUs for a task (its nodes were started with --num-cpus 0?); "
            "add a node with CPUs, or leave out --ray-address to start a local cluster"
        )
    if threads is not None:
        if threads > largest:
            raise ValueError(
                f"--threads {threads}: each Ray task would ask for {threads} CPUs but the largest node "
                f"of the Ray cluster has {largest:g}; pass --threads {max(1, math.floor(largest))} or "
                "fewer, or leave it out to fit the tasks to the cluster"
            )
        return float(threads)
    share = min(sum(cpus) / workers, largest)
    return max(CPU_STEP, math.floor(share / CPU_STEP + 1e-9) * CPU_STEP)


def fits(cpus: Sequence[float], request: float) -> bool:
    return any(c + 1e-9 >= request for c in cpus)


def run_on_ray(
    units: Sequence[Unit],
    workers: int,
    address: str | None,
    submit: Callable[[Unit], None],
    threads: int | None,
    log_dir: Path | None = None,
) -> Generator[list[Outcome], None, None]:
    """Train ``units`` as Ray tasks, ``workers`` at a time on a local cluster (module docstring)."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    with ray_session(ray, address, workers, threads, log_dir) if started_here else joined():
        cpus = task_cpus(node_cpus(ray.nodes()), workers, threads)
        task_threads = threads or max(1, math.floor(cpus))
        task = ray.remote(num_cpus=cpus)(train_unit)
        pending: dict[Any, Unit] = {}
        try:
            for unit in units:
                submit(unit)
                pending[task.remote(unit, True, task_threads)] = unit
            yield from results(ray, pending, cpus)
        except KeyboardInterrupt as error:  # Ray turns our Interrupted into a plain one
            raise as_interrupted(error) from None


def results(ray: Any, pending: dict[Any, Unit], cpus: float) -> Iterator[list[Outcome]]:
    """The outcomes of the ``pending`` tasks as they finish; stops a study no node can serve."""
    stuck_since: float | None = None
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_SECONDS)
        if not ready:
            stuck_since = check_feasible(node_cpus(ray.nodes()), cpus, stuck_since)
            continue
        stuck_since = None
        for ref in ready:
            unit = pending.pop(ref)
            try:
                outcomes = ray.get(ref)
            except Exception as error:  # the task or its worker crashed
                outcomes = failed(
                    unit, f"ray task failed: {type(error).__name__}: {str(error).splitlines()[0]}"
                )
            yield outcomes


def check_feasible(cpus: Sequence[float], request: float, stuck_since: float | None) -> float | None:
    """None while some alive node has ``request`` CPUs; else when that began, raising ValueError once
    it has lasted ``INFEASIBLE_SECONDS``."""
    if fits(cpus, request):
        return None
    now = time.monotonic()
    if stuck_since is not None and now - stuck_since >= INFEASIBLE_SECONDS:
        raise ValueError(
            f"no alive node of the Ray cluster has the {request:g} CPUs a task asks for "
            f"(nodes have {', '.join(f'{c:g}' for c in cpus) or 'none'}) for {INFEASIBLE_SECONDS:g} s; "
            "the unfinished runs stay pending: add nodes and resume with --resume"
        )
    return now if stuck_since is None else stuck_since


@contextmanager
def joined() -> Iterator[None]:
    """A cluster the caller initialised: leave it running."""
    yield


@contextmanager
def ray_session(
    ray: Any, address: str | None, workers: int, threads: int | None, log_dir: Path | None
) -> Iterator[None]:
    """``ray.init`` (joined, or a local cluster of ``workers x threads`` CPUs), then ``ray.shutdown``.

    Ray's driver log lines go to ``log_dir/ray-logs/driver.log``; ray.init's SIGTERM handler is
    replaced by the one in place before (lpae.interrupt stops the study cleanly)."""
    from lpae.study.execute import threads_per_worker

    logs = (log_dir / LOG_FOLDER) if log_dir is not None else None
    if logs is not None:
        collect_leftover_logs(logs)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with ray_logs_to(logs):
        temp = None
        try:
            if address:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            else:
                temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
                record = logs / CLUSTER_RECORD if logs is not None else None
                if record is not None:
                    write_record(record, temp, [])
                per_task = threads or threads_per_worker(workers)
                with local_only():
                    ray.init(
                        "local",  # a new cluster, never one found through RAY_ADDRESS
                        num_cpus=workers * per_task,
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                        _temp_dir=str(temp),
                    )
                if record is not None:
                    write_record(record, temp, descendants(os.getpid()))
            restore(handlers)
            yield
        finally:
            if ray.is_initialized():
                ray.shutdown()
            restore(handlers)
            if temp is not None:
                keep_logs(temp, logs)


def restore(handlers: dict[signal.Signals, Any]) -> None:
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)


@contextmanager
def local_only() -> Iterator[None]:
    """While a local cluster starts: node address 127.0.0.1 (so every server binds to it alone),
    no usage statistics, no dashboard process. Its processes inherit the environment.

    Both Ray internals touched here (checked on Ray 2.60; tests/test_study_ray.py checks the
    outcome) are left alone where a Ray version lacks them: the cluster then still works."""
    from ray._private import node, ray_constants

    saved_env = {name: os.environ.get(name) for name in LOCAL_ENV}
    saved_cluster = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)  # read from the environment at import
    saved_api_server = getattr(node.Node, "start_api_server", None)
    os.environ.update(LOCAL_ENV)
    if saved_cluster is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False

    def no_api_server(self: Any, **_: Any) -> None:  # what a minimal Ray install ends with
        self._webui_url = None

    if saved_api_server is not None:
        node.Node.start_api_server = no_api_server  # type: ignore[method-assign]
    try:
        yield
    finally:
        if saved_api_server is not None:
            node.Node.start_api_server = saved_api_server  # type: ignore[method-assign]
        if saved_cluster is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved_cluster
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class RayRecords(logging.Handler):
    """Records of Ray's loggers to ``target``; any other record as Python would show it unhandled."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "ray" or record.name.startswith("ray."):
            self.target.handle(record)
        elif logging.lastResort is not None and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


@contextmanager
def ray_logs_to(logs: Path | None) -> Iterator[None]:
    """Ray's Python log lines in this process: to ``logs/driver.log`` (or nowhere), not stderr.

    ray.init(configure_logging=False) empties the "ray" logger's handlers, so the lines are caught
    at the root logger, where they propagate."""
    ray_logger, root = logging.getLogger("ray"), logging.getLogger()
    saved = (ray_logger.handlers[:], ray_logger.propagate, ray_logger.level)
    target: logging.Handler
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        target = logging.FileHandler(logs / "driver.log")
        target.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        target = logging.NullHandler()
    catcher = RayRecords(target)
    ray_logger.handlers.clear()
    ray_logger.propagate = True
    ray_logger.setLevel(logging.INFO)
    root.addHandler(catcher)
    try:
        yield
    finally:
        root.removeHandler(catcher)
        target.close()
        ray_logger.handlers[:] = saved[0]
        ray_logger.propagate, ray_logger.level = saved[1], saved[2]


def keep_logs(temp: Path, logs: Path | None) -> None:
    """Move the cluster's session logs from ``temp`` into ``logs`` (one folder per session), then
    delete ``temp``."""
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        for session_logs in sorted(temp.glob("session_2*/logs")):
            target = logs / session_logs.parent.name
            if not target.exists():
                shutil.move(str(session_logs), str(target))
        (logs / CLUSTER_RECORD).unlink(missing_ok=True)
    shutil.rmtree(temp, ignore_errors=True)


def write_record(record: Path, temp: Path, processes: list[tuple[int, int]]) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"temp_dir": str(temp), "processes": processes}))


def collect_leftover_logs(logs: Path) -> None:
    """What the local cluster of a killed study process left: its processes that outlived it
    (Ray's agents exit about a minute after their raylet; the rest dies with the study process)
    are killed, its logs kept and its temporary folder deleted."""
    record = logs / CLUSTER_RECORD
    if not record.is_file():
        return
    try:
        left = json.loads(record.read_text())
        temp, processes = Path(left["temp_dir"]), [(int(p), int(s)) for p, s in left["processes"]]
    except (ValueError, KeyError, TypeError):
        record.unlink(missing_ok=True)
        return
    for pid, started in processes:
        if start_time(pid) == started:  # the same process, not a new one with a reused id
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    if temp.name.startswith(TEMP_PREFIX) and temp.parent == Path(tempfile.gettempdir()) and temp.is_dir():
        keep_logs(temp, logs)
    record.unlink(missing_ok=True)


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (Linux), or None."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    fields = proc_stat(pid)
    return int(fields[19]) if fields else None  # field 22 of stat: start time in clock ticks


def descendants(pid: int) -> list[tuple[int, int]]:
    """(process id, start time) of every descendant of ``pid`` (Linux /proc; empty elsewhere)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = proc_stat(int(stat.parent.name))
        if fields:
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        started = start_time(child)
        if started is not None:
            found.append((child, started))
        todo.extend(parents.get(child, []))
    return sorted(found)
