"""MLflow backend: one MLflow run per lpae run, in an experiment named after the study.

It talks to the tracking store through ``mlflow.tracking.MlflowClient`` (no global active run,
no tags guessed from the environment). The default store is the one MLflow 3 makes its default,
SQLite: ``sqlite:///OUT/mlflow.db`` with artifacts in ``OUT/mlartifacts`` (MLflow 3 refuses its
old ./mlruns file store unless MLFLOW_ALLOW_FILE_STORE=true); any tracking URI may be given
instead (a server, a database; a ``sqlite:`` file keeps its artifacts in ``mlartifacts`` beside it).

- params and tags: as lpae.tracking.replay sends them; the run's ``lpae.run_id`` (its key) and
  ``lpae.study_dir`` (the study folder, the scope of stamps) are tags too;
- metrics: history columns at step = epoch, metrics.json's numbers by their own names (a name
  that is also a history column gets ``final/`` in front) at step = the last epoch;
- status: FINISHED for a done run, FAILED for a diverged one, KILLED when logging was interrupted
  (without its ``lpae.stamp`` tag, so it is logged anew next time);
- a study keeps one study-level run (tag ``lpae.kind`` = study, the parent of its lpae runs
  through ``mlflow.parentRunId``) that holds report.html, report.md and the grid; its lpae runs
  have ``lpae.kind`` = run: ``mlflow.search_runs(experiment_names=[NAME],
  filter_string="tags.`lpae.kind` = 'run'")`` gives one row per lpae run.

MLflow's own log lines and warnings are silenced (its logger set to CRITICAL): lpae prints one
line per problem, and a failure of the store becomes a ValueError naming the URI.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lpae.tracking.base import DIVERGED, TrackedRun, Tracker

STATUS = {"done": "FINISHED", DIVERGED: "FAILED"}
BATCH = 100  # MLflow's limit of params (and of tags) per log_batch call
METRIC_BATCH = 1000
TAG_LENGTH = 5000  # below MLflow's limit on tag values (8000 in MLflow 3, 5000 in older stores)


def default_uri(folder: Path) -> tuple[str, str]:
    """(tracking URI, artifact location) of the store inside ``folder``."""
    folder = folder.resolve()
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "mlartifacts").as_uri()


def artifacts_beside(uri: str) -> str | None:
    """Where a new experiment of a user's ``sqlite:`` store keeps artifacts (beside the database,
    not in the current folder); None for other stores (their server or MLflow decides)."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri[len("sqlite:///") :])
    return (database.resolve().parent / "mlartifacts").as_uri()


def silence() -> None:
    """MLflow's loggers (and those it configures on import) at CRITICAL: lpae reports failures itself."""
    for name in ("mlflow", "alembic", "huey", "sqlalchemy.engine"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """MLflow's, its database's and its HTTP client's failures as one ValueError naming the store;
    MLflow's warnings ignored."""
    from mlflow.exceptions import MlflowException

    failures: tuple[type[BaseException], ...] = (MlflowException, OSError)
    try:
        from requests.exceptions import RequestException
        from sqlalchemy.exc import SQLAlchemyError

        failures += (SQLAlchemyError, RequestException)
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except failures as error:
            text = " ".join(str(error).split())
            raise ValueError(
                f"--track mlflow: the tracking store {shown(uri)} failed: {text[:300]}"
            ) from None


def shown(uri: str) -> str:
    """``uri`` without a user name or password in it (for messages)."""
    parsed = urlparse(uri)
    if parsed.username is None and parsed.password is None:
        return uri
    host = parsed.hostname or ""
    return parsed._replace(netloc=host + (f":{parsed.port}" if parsed.port else "")).geturl()


def now_ms() -> int:
    return int(time.time() * 1000)


class MlflowRun(TrackedRun):
    """One MLflow run; its metrics are sent in one batch when it ends (a transaction per call of
    a SQLite store, rather than one per epoch)."""

    def __init__(self, tracker: MlflowTracker, run_id: str, key: str | None) -> None:
        self.tracker, self.run_id, self.key = tracker, run_id, key
        self.history_names: set[str] = set()
        self.pending: list[Any] = []  # mlflow.entities.Metric

    def add_metrics(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = now_ms()
        self.pending += [Metric(name, value, stamp, step) for name, value in values.items()]

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.history_names.update(metrics)
        self.add_metrics(metrics, epoch)

    def log_final(self, metrics: Mapping[str, float], step: int) -> None:
        named = {(f"final/{k}" if k in self.history_names else k): v for k, v in metrics.items()}
        self.add_metrics(named, step)

    def log_artifact(self, path: Path, folder: str = "") -> None:
        with store_errors(self.tracker.uri):
            self.tracker.client.log_artifact(self.run_id, str(path), folder or None)

    def end(self, status: str, stamp: str | None = None) -> None:
        client = self.tracker.client
        with store_errors(self.tracker.uri):
            for start in range(0, len(self.pending), METRIC_BATCH):
                client.log_batch(self.run_id, metrics=self.pending[start : start + METRIC_BATCH])
            self.pending = []
            if stamp is not None:  # last: a run without it counts as not logged (lpae.tracking.base)
                client.set_tag(self.run_id, "lpae.stamp", stamp)
            client.set_terminated(self.run_id, STATUS.get(status, "FINISHED"))
        if self.key is not None:
            self.tracker.logged[self.key] = [(self.run_id, stamp)]

    def abort(self) -> None:
        with store_errors(self.tracker.uri):
            self.tracker.client.set_terminated(self.run_id, "KILLED")


class MlflowTracker(Tracker):
    """An MLflow experiment (module docstring); ``group`` and ``scope``: the study's name and folder."""

    kind = "mlflow"

    def __init__(
        self,
        uri: str,
        experiment: str,
        artifacts: str | None = None,
        group: str | None = None,
        scope: str | None = None,
    ) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from mlflow.tracking import MlflowClient
        silence()  # after the import, which sets MLflow's loggers up
        self.uri, self.scope, self.location = uri, scope, f"{shown(uri)} (experiment {experiment!r})"
        with store_errors(uri):
            self.client = MlflowClient(tracking_uri=uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is not None and found.lifecycle_stage == "deleted":
                raise ValueError(
                    f"--track mlflow: experiment {experiment!r} was deleted in {shown(uri)}; restore it "
                    "(mlflow experiments restore) or rename the study"
                )
            if found is None:
                self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifacts)
            else:
                self.experiment_id = found.experiment_id
            runs = self.scoped_runs()
            # key -> [(MLflow run id, stamp or None)]: more than one when a study was run twice at once
            self.logged: dict[str, list[tuple[str, str | None]]] = {}
            for run in runs["run"]:
                tags = run.data.tags
                if "lpae.run_id" in tags:
                    self.logged.setdefault(tags["lpae.run_id"], []).append(
                        (run.info.run_id, tags.get("lpae.stamp"))
                    )
            self.parent_id = self.group_run(group, runs["study"]) if group is not None else None

    def scoped_runs(self) -> dict[str, list[Any]]:
        """Active runs of this scope by kind tag: {"run": [...], "study": [...]}."""
        from mlflow.entities import ViewType

        found: dict[str, list[Any]] = {"run": [], "study": []}
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
            )
            for run in page:
                tags = run.data.tags
                if tags.get("lpae.kind") in found and tags.get("lpae.study_dir") == self.scope:
                    found[tags["lpae.kind"]].append(run)
            token = page.token
            if not token:
                return found

    def group_run(self, group: str, found: list[Any]) -> str:
        """The study-level run of this scope, made RUNNING again, or a new one."""
        if found:
            run_id = str(found[0].info.run_id)
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        tags = {"lpae.kind": "study", "lpae.study": group}
        if self.scope is not None:
            tags["lpae.study_dir"] = self.scope
        return str(self.client.create_run(self.experiment_id, tags=tags, run_name=group).info.run_id)

    def stamp(self, key: str) -> str | None:
        runs = self.logged.get(key, [])
        return runs[0][1] if len(runs) == 1 else None

    def keys(self) -> set[str]:
        return set(self.logged)

    def forget(self, keys: Sequence[str]) -> None:
        with store_errors(self.uri):
            for key in keys:
                for run_id, _ in self.logged.pop(key, []):
                    self.client.delete_run(run_id)

    def start_run(
        self, name: str, params: Mapping[str, str], tags: Mapping[str, str], key: str | None = None
    ) -> TrackedRun:
        from mlflow.entities import Param, RunTag

        own = {"lpae.kind": "run", **tags}
        if key is not None:
            self.forget([key])
            own["lpae.run_id"] = key
        if self.scope is not None:
            own["lpae.study_dir"] = self.scope
        if self.parent_id is not None:
            own["mlflow.parentRunId"] = self.parent_id
        with store_errors(self.uri):
            created = self.client.create_run(self.experiment_id, run_name=name, tags={})
            run_id = created.info.run_id
            param_list = [Param(k, v) for k, v in params.items()]
            tag_list = [RunTag(k, v[:TAG_LENGTH]) for k, v in own.items()]
            for start in range(0, max(len(param_list), len(tag_list)), BATCH):
                self.client.log_batch(
                    run_id, params=param_list[start : start + BATCH], tags=tag_list[start : start + BATCH]
                )
        if key is not None:
            self.logged[key] = [(run_id, None)]
        return MlflowRun(self, run_id, key)

    def log_group(self, files: Sequence[Path]) -> None:
        if self.parent_id is None:
            return
        with store_errors(self.uri):
            for path in files:
                self.client.log_artifact(self.parent_id, str(path))

    def close(self, complete: bool = True) -> None:
        if self.parent_id is not None:
            with store_errors(self.uri):
                self.client.set_terminated(self.parent_id, "FINISHED" if complete else "KILLED")
