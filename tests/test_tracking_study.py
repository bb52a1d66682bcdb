"""`lpae study --track`: a tiny study (2 criteria x 1 seed, VAEs on digits, 2 epochs, fused) gives
an MLflow experiment named after it with one run per lpae run (params, per-epoch and final
metrics, artifacts, the report on the study-level run), read back with mlflow.search_runs; a resumed
study logs nothing twice and replaces what changed or was cut short; TensorBoard event files
whose scalars equal history.csv and metrics.json. Nothing external is started: MLflow's default
SQLite store and TensorBoard's event files live in the study folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lpae.cli import app
from lpae.study import Store, parse_grid, run_study
from lpae.tracking import Tracking, open_tracker
from test_tracking import scalars

runner = CliRunner()
pytestmark = pytest.mark.slow

GRID = """
name = "tracked"
seeds = [0]
criteria = ["l1", "gaussian:scale=calibrated"]
data = ["digits"]
[[models]]
model = "vae"
hidden = [16]
latent = 4
[train]
epochs = 2
checkpoint_every = 0
"""


def store_rows(out: Path) -> dict[str, Any]:
    with Store(out, create=False) as store:
        return {row.run_id: row for row in store.rows()}


@pytest.fixture(scope="module")
def mlflow_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study run as a user runs it, in a fresh process (MLflow imported and its store made
    there), with --quiet: its terminal output is lpae's own lines only."""
    pytest.importorskip("mlflow")
    folder = tmp_path_factory.mktemp("tracked")
    (folder / "grid.toml").write_text(GRID)
    out = folder / "study"
    command = [sys.executable, "-m", "lpae", "study", str(folder / "grid.toml"), "--out", str(out)]
    proc = subprocess.run(
        [*command, "--threads", "1", "--quiet", "--track", "mlflow"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no MLflow log line or warning
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("study tracked: 2 runs trained") and len(lines) == 4, proc.stdout
    assert lines[-1] == f"tracked: mlflow sqlite:///{out.resolve() / 'mlflow.db'} (experiment 'tracked')"
    return out


def searched(out: Path, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["tracked"])
    assert isinstance(runs, pd.DataFrame)
    return runs


def lpae_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["tags.lpae.kind"] == "run"].set_index("tags.lpae.run_id")


def test_one_mlflow_run_per_lpae_run_with_params_and_metrics(
    mlflow_study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    runs = searched(mlflow_study, monkeypatch)
    rows = store_rows(mlflow_study)
    tracked = lpae_runs(runs)
    assert sorted(tracked.index) == sorted(rows) and len(runs) == len(rows) + 1  # + the study-level run
    # the run ids are those of the grid without tracking: tracking enters no run key
    assert sorted(rows) == sorted(r.run_id for r in parse_grid(GRID, "grid.toml").runs)
    client = mlflow.MlflowClient()
    for run_id, row in rows.items():
        logged = tracked.loc[run_id]
        folder = mlflow_study / row.run_dir
        config = json.loads((folder / "config.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        assert logged["tags.mlflow.runName"] == Path(row.run_dir).name and logged["status"] == "FINISHED"
        assert logged["tags.lpae.study"] == "tracked" and logged["tags.lpae.run_dir"] == row.run_dir
        assert logged["params.loss"] == config["loss"] and logged["params.model.model"] == "vae"
        assert logged["params.train.epochs"] == "2" and logged["params.fused"] == "true"
        for name, value in metrics.items():
            if isinstance(value, float):
                assert logged[f"metrics.{name}"] == value or (
                    np.isnan(value) and np.isnan(logged[f"metrics.{name}"])
                )
        assert logged["tags.lpae.status"] == "done"
        history = pd.read_csv(folder / "history.csv")
        for column in ("train_loss", "val_loss", "val_recon_l2"):
            steps = [(m.step, m.value) for m in client.get_metric_history(logged["run_id"], column)]
            assert steps == list(zip(history["epoch"], history[column], strict=True)), column
        artifacts = {a.path for a in client.list_artifacts(logged["run_id"])}
        assert artifacts == {"config.json", "metrics.json", "history.csv", "samples.png"}


def test_the_study_level_run_holds_the_report_and_parents_the_runs(
    mlflow_study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    runs = searched(mlflow_study, monkeypatch)
    study = runs[runs["tags.lpae.kind"] == "study"]
    assert len(study) == 1 and study.iloc[0]["tags.mlflow.runName"] == "tracked"
    assert study.iloc[0]["status"] == "FINISHED"
    parent = study.iloc[0]["run_id"]
    assert set(lpae_runs(runs)["tags.mlflow.parentRunId"]) == {parent}
    client = mlflow.MlflowClient()
    assert {a.path for a in client.list_artifacts(parent)} == {"report.html", "report.md", "grid.toml"}
    local = Path(client.download_artifacts(parent, "report.md", str(mlflow_study.parent)))
    assert local.read_text() == (mlflow_study / "report.md").read_text()


def test_a_resumed_study_logs_nothing_twice_and_replaces_what_changed(
    mlflow_study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = lpae_runs(searched(mlflow_study, monkeypatch))["run_id"].to_dict()
    grid = parse_grid(GRID, "grid.toml")
    tracking = Tracking("mlflow")
    # a run whose logging was cut short (KILLED, no stamp) is not taken as logged
    tracker = open_tracker(tracking, mlflow_study, "tracked", group="tracked")
    first = sorted(before)[0]
    cut = tracker.start_run("cut short", {}, {}, key=first)
    cut.abort()
    assert tracker.stamp(first) is None
    tracker.close()
    # and a run retrained since (other results) is logged anew
    second = sorted(before)[1]
    metrics_file = mlflow_study / store_rows(mlflow_study)[second].run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics_file.write_text(json.dumps({**metrics, "train_seconds": metrics["train_seconds"] + 1}))
    result = run_study(grid, mlflow_study, resume=True, report=False, tracking=tracking)
    assert result.trained == 0
    after = searched(mlflow_study, monkeypatch)
    now = lpae_runs(after)["run_id"].to_dict()
    assert sorted(now) == sorted(before) and len(after) == len(before) + 1
    assert now[first] != before[first] and now[second] != before[second]  # both logged anew
    assert set(after["status"]) == {"FINISHED"}
    again = run_study(grid, mlflow_study, resume=True, report=False, tracking=tracking)
    assert again.trained == 0
    assert lpae_runs(searched(mlflow_study, monkeypatch))["run_id"].to_dict() == now  # nothing logged twice


def test_tensorboard_event_files_hold_history_metrics_settings_and_report(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(GRID)
    out = tmp_path / "study"
    command = [
        "study",
        str(grid_file),
        "--out",
        str(out),
        "--threads",
        "1",
        "--quiet",
        "--track",
        "tensorboard",
    ]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    root = out / "tensorboard" / "tracked"
    rows = store_rows(out)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [*(Path(r.run_dir).name for r in rows.values()), "report"]
    )
    for row in rows.values():
        folder = out / row.run_dir
        logs = root / folder.name
        read = scalars(logs)
        history = pd.read_csv(folder / "history.csv")
        for column in history.columns.drop("epoch"):  # TensorBoard keeps float32
            expected = [
                (int(e), float(np.float32(v))) for e, v in zip(history["epoch"], history[column], strict=True)
            ]
            assert read[column] == expected, column
        metrics = json.loads((folder / "metrics.json").read_text())
        assert read["final/recon_l2"] == [(2, float(np.float32(metrics["recon_l2"])))]
        events = EventAccumulator(str(logs), size_guidance={"images": 0, "tensors": 0})
        events.Reload()
        assert events.Tags()["images"] == ["samples"]
        assert "_hparams_/experiment" in events.PluginTagToContent("hparams")
        assert json.loads((logs / "lpae-run.json").read_text())["key"] == row.run_id
    report = EventAccumulator(str(root / "report"), size_guidance={"tensors": 0})
    report.Reload()
    text = report.Tensors("report/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text == (out / "report.md").read_text()
    files = sorted(p.relative_to(root) for p in root.rglob("events.*"))
    run_study(parse_grid(GRID, "grid.toml"), out, resume=True, report=False, tracking=Tracking("tensorboard"))
    assert sorted(p.relative_to(root) for p in root.rglob("events.*")) == files  # nothing logged twice
