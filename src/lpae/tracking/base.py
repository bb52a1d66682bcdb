"""The tracking contract: a backend takes finished lpae runs, one at a time, and the study's report.

A :class:`Tracker` is one open experiment of a backend (MLflow's tracking store, a TensorBoard log
folder). Its :meth:`Tracker.start_run` gives a :class:`TrackedRun` that takes the run's settings
(``params``, strings by flat name) and tags when it starts, then per-epoch metrics
(:meth:`TrackedRun.log_epoch`, step = epoch), the final metrics (:meth:`TrackedRun.log_final`) and
files (:meth:`TrackedRun.log_artifact`), and is closed by :meth:`TrackedRun.end` (complete, with a
status) or :meth:`TrackedRun.abort` (interrupted: the backend drops or marks what it had).

Runs of a study carry a ``key`` (the lpae run id) and, once ended, a ``stamp`` (a digest of the run
folder's results): :meth:`Tracker.stamp` tells whether a run is already logged as it is now, so a
resumed study logs each lpae run once, and :meth:`Tracker.forget` drops runs the study no longer
has. A tracker opened with a ``group`` (the study's name) also keeps one study-level record, where
:meth:`Tracker.log_group` puts the report.

Backends import their packages when opened (lpae.tracking.open_tracker): lpae works without them,
and :func:`check_installed` names the install command when one is missing.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

KINDS = ("mlflow", "tensorboard")
INSTALL = "pip install 'lpae[track]' (in an lpae checkout: pip install -e '.[track]')"
# What each backend imports: mlflow's default local store is SQLite, through SQLAlchemy and alembic.
NEEDS = {"mlflow": ("mlflow", "sqlalchemy", "alembic"), "tensorboard": ("tensorboard",)}
DONE, DIVERGED = "done", "diverged"


@dataclass(frozen=True)
class Tracking:
    """Where runs are logged: ``kind`` (mlflow or tensorboard) and an optional ``uri`` (an MLflow
    tracking URI, or a TensorBoard log folder); None: a store inside the output folder."""

    kind: str
    uri: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"--track must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.uri is not None and not self.uri.strip():
            raise ValueError("--track-uri is empty; give an MLflow tracking URI or a TensorBoard folder")


def tracking_option(kind: str | None, uri: str | None) -> Tracking | None:
    """The CLI's ``--track KIND --track-uri URI`` checked (and the backend's packages found)."""
    if kind is None:
        if uri is not None:
            raise ValueError("--track-uri needs --track mlflow or --track tensorboard")
        return None
    tracking = Tracking(kind, uri)
    check_installed(tracking.kind)
    return tracking


def check_installed(kind: str) -> None:
    """ValueError naming the install command when a package the backend needs is missing."""
    missing = [name for name in NEEDS[kind] if importlib.util.find_spec(name) is None]
    if missing:
        names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        verb = "is" if len(missing) == 1 else "are"
        raise ValueError(f"--track {kind} needs {names}, which {verb} not installed; install with: {INSTALL}")


class TrackedRun(ABC):
    """One run being logged (module docstring); ``end`` or ``abort`` closes it."""

    @abstractmethod
    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """One history.csv row: its values at step ``epoch``."""

    @abstractmethod
    def log_final(self, metrics: Mapping[str, float], step: int) -> None:
        """metrics.json's numbers, at the run's last epoch ``step``."""

    @abstractmethod
    def log_artifact(self, path: Path, folder: str = "") -> None:
        """A file of the run (a backend without files keeps what it can show: text, images)."""

    @abstractmethod
    def end(self, status: str, stamp: str | None = None) -> None:
        """The run is complete: ``status`` done or diverged, ``stamp`` its results' digest."""

    @abstractmethod
    def abort(self) -> None:
        """The run was not logged to its end (an error, a signal): it counts as not logged."""


class Tracker(ABC):
    """An open experiment of one backend (module docstring)."""

    kind: str
    location: str  # where the runs go, for messages

    @abstractmethod
    def start_run(
        self, name: str, params: Mapping[str, str], tags: Mapping[str, str], key: str | None = None
    ) -> TrackedRun:
        """Start logging a run; a run logged before under the same ``key`` is replaced."""

    @abstractmethod
    def stamp(self, key: str) -> str | None:
        """The stamp of the run logged under ``key`` (None: none is, or it was not logged to its end)."""

    @abstractmethod
    def keys(self) -> set[str]:
        """The keys of the runs logged in this tracker's scope."""

    @abstractmethod
    def forget(self, keys: Sequence[str]) -> None:
        """Remove the runs logged under ``keys``."""

    @abstractmethod
    def log_group(self, files: Sequence[Path]) -> None:
        """Put the study-level files (report.html, report.md, the grid) on the group's record."""

    def close(self, complete: bool = True) -> None:  # noqa: B027  (a backend with nothing to close)
        """Close the experiment; ``complete`` is False when the study stopped early."""
