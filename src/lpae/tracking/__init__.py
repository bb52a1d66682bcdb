"""Experiment tracking (optional): finished lpae runs logged to MLflow or TensorBoard.

``lpae train --track mlflow|tensorboard`` and ``lpae study --track ...`` log each finished run
from its folder (lpae.tracking.replay: settings as params, history.csv per epoch, metrics.json as
final metrics, files and sample grids as artifacts); a study logs one tracked run per lpae run
in an experiment named after the study, and its report on a study-level record. Tracking is an
output setting: it changes no result, so it is no run setting and enters no run key.

The stores live inside the output folder unless ``--track-uri`` says otherwise: MLflow in
``OUT/mlflow.db`` (SQLite, its default store) with artifacts in ``OUT/mlartifacts``, TensorBoard
event files in ``OUT/tensorboard``. The packages are imported only when tracking is asked for
(the ``track`` extra: mlflow-skinny with SQLAlchemy and alembic, tensorboard). docs/tracking.md.
"""

from __future__ import annotations

from pathlib import Path

from lpae.tracking.base import KINDS, TrackedRun, Tracker, Tracking, check_installed, tracking_option
from lpae.tracking.replay import track_run

TRAIN_EXPERIMENT = "lpae-train"


def open_tracker(tracking: Tracking, out: Path | str, experiment: str, group: str | None = None) -> Tracker:
    """The backend's tracker for output folder ``out``; with a ``group`` (a study's name), its runs
    are scoped to ``out`` (stamps, replacing) and it keeps the study-level record."""
    check_installed(tracking.kind)
    out = Path(out)
    scope = str(out.resolve()) if group is not None else None
    if tracking.kind == "mlflow":
        from lpae.tracking.mlflow_tracker import MlflowTracker, artifacts_beside, default_uri

        artifacts: str | None
        if tracking.uri is None:
            uri, artifacts = default_uri(out)
        else:
            uri, artifacts = tracking.uri, artifacts_beside(tracking.uri)
        return MlflowTracker(uri, experiment, artifacts, group, scope)
    from lpae.tracking.tensorboard_tracker import TensorboardTracker

    root = out / "tensorboard" if tracking.uri is None else Path(tracking.uri)
    return TensorboardTracker(root, group, scope)


def track_trained_run(tracking: Tracking, out: Path | str) -> str:
    """Log the run folder ``out`` that `lpae train` wrote (experiment TRAIN_EXPERIMENT); returns
    where it went."""
    out = Path(out)
    tracker = open_tracker(tracking, out, TRAIN_EXPERIMENT)
    try:
        track_run(tracker, out, out.name, {"lpae.run_dir": str(out.resolve())})
    finally:
        tracker.close()
    return tracker.location


__all__ = [
    "KINDS",
    "TRAIN_EXPERIMENT",
    "TrackedRun",
    "Tracker",
    "Tracking",
    "check_installed",
    "open_tracker",
    "track_run",
    "track_trained_run",
    "tracking_option",
]
