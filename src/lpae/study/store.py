"""The results store: one SQLite file per study, one row per run, every write a transaction.

Table ``runs``: ``run_id`` (hash of the key), ``key`` (canonical JSON of the resolved RunSpec,
unique), ``position`` (order in the grid), ``status`` (pending, running, done, diverged,
failed), ``metrics`` (JSON), ``error``, ``run_dir`` (relative to the study folder),
``started_at`` / ``finished_at`` (Unix seconds), ``seconds`` (wall time of the run) and
``attempts``. Table ``meta`` holds the grid's TOML text and name.

Training health (lpae.study.health): table ``own_metric`` caches the test value of one run under
one criterion's own metric (``run_id``, ``spec``: the own-metric spec, ``stamp``: which weights
it was computed from, ``value``: NULL when not finite), so that reports after the first
recompute only what is new or changed (being a cache, it is dropped and rebuilt when a store
holds it in another layout); table ``health`` holds the latest flags of each finished run
(``run_id``, ``flags``: JSON). Recording a run again (a retried
or resumed run) deletes both for that run in the same transaction. Both tables are created when a
store is opened, so study folders written before they existed open as they are and get their
health computed by the next report.

Durability: the store is written by one process only (workers send their results back to it).
Each write is one ``BEGIN IMMEDIATE ... COMMIT``, so a SIGKILL at any moment leaves either the
row before or the row after, never half a row. Runs that were pending or running when a study
died are simply trained again on resume; finished rows (done, diverged, and failed unless asked)
are kept as they are.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STORE_NAME = "study.sqlite"
FINISHED = ("done", "diverged", "failed")
STATUSES = ("pending", "running", *FINISHED)

OWN_METRIC_COLUMNS = ("run_id", "spec", "stamp", "value")
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    position INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'diverged', 'failed')),
    metrics TEXT,
    error TEXT,
    run_dir TEXT NOT NULL,
    started_at REAL,
    finished_at REAL,
    seconds REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS own_metric (
    run_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    stamp TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, spec)
);
CREATE TABLE IF NOT EXISTS health (run_id TEXT PRIMARY KEY, flags TEXT NOT NULL);
"""


@dataclass
class Outcome:
    """What training one run produced, sent back from wherever it ran."""

    run_id: str
    status: str  # done, diverged or failed
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    files: dict[str, bytes] | None = None  # the run directory's files, when trained elsewhere (ray)


@dataclass(frozen=True)
class Row:
    run_id: str
    key: str
    position: int
    status: str
    metrics: dict[str, Any]
    error: str
    run_dir: str
    started_at: float | None
    finished_at: float | None
    seconds: float | None
    attempts: int

    @property
    def spec(self) -> dict[str, Any]:
        return dict(json.loads(self.key))


class Store:
    """The study's SQLite file. Open with ``Store(folder)``; close or use as a context manager."""

    def __init__(self, folder: Path | str, create: bool = True) -> None:
        self.path = Path(folder) / STORE_NAME
        if not create and not self.path.is_file():
            raise ValueError(f"{folder}: not a study folder (no {STORE_NAME})")
        try:
            self.open()
        except sqlite3.Error as error:
            if getattr(self, "connection", None) is not None:
                self.connection.close()
            if isinstance(error, sqlite3.OperationalError):  # read-only, unopenable, locked, disk full
                fix = "the study folder must be writable: check its permissions and free space, or copy it"
            else:
                fix = "the file is damaged or not an lpae study store: restore it, or run the study again"
            raise ValueError(f"{self.path}: cannot open the study store ({error}); {fix}") from None

    def open(self) -> None:
        """Connect, and create the tables (or rebuild a cache table of an older layout)."""
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in `transaction`).
        self.connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        with self.transaction() as cursor:
            columns = [r[1] for r in cursor.execute("PRAGMA table_info(own_metric)").fetchall()]
            if columns and columns != list(OWN_METRIC_COLUMNS):
                cursor.execute("DROP TABLE own_metric")  # a cache of another layout: rebuilt on demand
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    cursor.execute(statement)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    # --- meta ------------------------------------------------------------------------------------

    def set_meta(self, values: dict[str, str]) -> None:
        with self.transaction() as cursor:
            cursor.executemany("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", values.items())

    def meta(self, name: str) -> str | None:
        found = self.connection.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if found is None else str(found[0])

    # --- runs ------------------------------------------------------------------------------------

    def plan(self, runs: Iterable[tuple[str, str, int, str]]) -> int:
        """Insert (run_id, key, position, run_dir) rows as pending unless present; return the number new."""
        with self.transaction() as cursor:
            before = cursor.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            cursor.executemany(
                "INSERT OR IGNORE INTO runs (run_id, key, position, status, run_dir) "
                "VALUES (?, ?, ?, 'pending', ?)",
                runs,
            )
            after = cursor.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return int(after - before)

    def mark_running(self, run_ids: Iterable[str]) -> None:
        now = time.time()
        with self.transaction() as cursor:
            cursor.executemany(
                "UPDATE runs SET status = 'running', started_at = ?, attempts = attempts + 1 "
                "WHERE run_id = ?",
                [(now, run_id) for run_id in run_ids],
            )

    def discard(self, run_ids: Iterable[str]) -> None:
        """Delete runs and everything derived from them (own-metric values, health flags)."""
        rows = [(run_id,) for run_id in run_ids]
        with self.transaction() as cursor:
            for table in ("runs", "own_metric", "health"):
                cursor.executemany(f"DELETE FROM {table} WHERE run_id = ?", rows)

    def release(self, run_ids: Iterable[str]) -> None:
        """Set rows left running by an interrupted study back to pending (finished rows stay)."""
        with self.transaction() as cursor:
            cursor.executemany(
                "UPDATE runs SET status = 'pending' WHERE run_id = ? AND status = 'running'",
                [(run_id,) for run_id in run_ids],
            )

    def record(self, outcomes: Iterable[Outcome]) -> None:
        """Write finished runs (a fused group's members together, in one transaction)."""
        rows = []
        for outcome in outcomes:
            if outcome.status not in FINISHED:
                raise ValueError(f"run {outcome.run_id}: status {outcome.status!r} is not one of {FINISHED}")
            seconds = max(outcome.finished_at - outcome.started_at, 0.0)
            metrics = json.dumps(outcome.metrics, sort_keys=True)
            rows.append(
                (
                    outcome.status,
                    metrics,
                    outcome.error,
                    outcome.started_at,
                    outcome.finished_at,
                    seconds,
                    outcome.run_id,
                )
            )
        with self.transaction() as cursor:
            cursor.executemany(
                "UPDATE runs SET status = ?, metrics = ?, error = ?, started_at = ?, finished_at = ?, "
                "seconds = ? WHERE run_id = ?",
                rows,
            )
            stale = [(row[-1],) for row in rows]  # derived from the run's old results
            cursor.executemany("DELETE FROM own_metric WHERE run_id = ?", stale)
            cursor.executemany("DELETE FROM health WHERE run_id = ?", stale)

    def rows(self, run_ids: Iterable[str] | None = None) -> list[Row]:
        found = self.connection.execute(
            "SELECT run_id, key, position, status, metrics, error, run_dir, started_at, finished_at, "
            "seconds, attempts FROM runs ORDER BY position, run_id"
        ).fetchall()
        wanted = None if run_ids is None else set(run_ids)
        return [
            Row(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else {}, r[5] or "", *r[6:])
            for r in found
            if wanted is None or r[0] in wanted
        ]

    def counts(self) -> dict[str, int]:
        found = dict(self.connection.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
        return {status: int(found.get(status, 0)) for status in STATUSES}

    # --- training health (lpae.study.health) ------------------------------------------------------

    def own_metrics(self) -> dict[tuple[str, str], tuple[str, float | None]]:
        """Cached own-metric values: (run_id, own-metric spec) -> (stamp, value; None: not finite)."""
        found = self.connection.execute("SELECT run_id, spec, stamp, value FROM own_metric").fetchall()
        return {(str(r[0]), str(r[1])): (str(r[2]), None if r[3] is None else float(r[3])) for r in found}

    def add_own_metrics(self, values: dict[tuple[str, str], tuple[str, float | None]]) -> None:
        """Cache own-metric values: (run_id, spec) -> (stamp, value)."""
        rows = [
            (run_id, spec, stamp, value if value is not None and math.isfinite(value) else None)
            for (run_id, spec), (stamp, value) in values.items()
        ]
        with self.transaction() as cursor:
            cursor.executemany(
                "INSERT OR REPLACE INTO own_metric (run_id, spec, stamp, value) VALUES (?, ?, ?, ?)", rows
            )

    def set_health(self, flags: dict[str, dict[str, Any]]) -> None:
        """Replace every run's health flags (a JSON object per run_id) in one transaction."""
        rows = [(run_id, json.dumps(value, sort_keys=True)) for run_id, value in flags.items()]
        with self.transaction() as cursor:
            cursor.execute("DELETE FROM health")
            cursor.executemany("INSERT INTO health (run_id, flags) VALUES (?, ?)", rows)

    def health(self) -> dict[str, dict[str, Any]]:
        found = self.connection.execute("SELECT run_id, flags FROM health").fetchall()
        return {str(r[0]): dict(json.loads(r[1])) for r in found}
