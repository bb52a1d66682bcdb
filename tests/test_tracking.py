"""lpae.tracking: what a run folder becomes (params, metrics, tags), the --track options and their
errors (unknown backend, missing package, a store MLflow refuses), and `lpae train --track`
into MLflow's default SQLite store and into TensorBoard event files read back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lpae.cli import app
from lpae.tracking import TRAIN_EXPERIMENT, tracking_option
from lpae.tracking.replay import final_values, flat_params, history_rows

runner = CliRunner()
TINY_TRAIN = ["--data", "iris", "--hidden", "8", "--latent", "2", "--epochs", "3", "--quiet"]


def test_params_are_the_flattened_config_without_fitted_statistics(digits_run: Path) -> None:
    config = json.loads((digits_run / "config.json").read_text())
    params = flat_params(config)
    assert params["loss"] == config["loss"] and params["data.spec"] == "digits"
    assert params["train.lr"] == json.dumps(config["train"]["lr"])
    assert params["model.hidden"] == "[64]" and params["train.patience"] == "null"
    assert params["data.preprocess.method"] == config["data"]["preprocess"]["method"]
    assert not any(k in params for k in ("data.preprocess.shift", "data.preprocess.scale"))
    assert all(isinstance(v, str) for v in params.values())


def test_final_metrics_are_the_numbers_and_the_rest_become_tags() -> None:
    numbers, tags = final_values({"status": "done", "recon_l2": 0.5, "epochs_run": 3, "unstable": False})
    assert numbers == {"recon_l2": 0.5, "epochs_run": 3.0}
    assert tags == {"lpae.status": "done", "lpae.unstable": "false"}


def test_history_rows_keep_every_column_and_non_finite_values(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text("epoch,train_loss,val_loss\n1,2.5,3.0\n2,nan,inf\n")
    rows = history_rows(path)
    assert [epoch for epoch, _ in rows] == [1, 2]
    assert rows[0][1] == {"train_loss": 2.5, "val_loss": 3.0}
    assert np.isnan(rows[1][1]["train_loss"]) and rows[1][1]["val_loss"] == np.inf


def test_tracking_options_are_checked() -> None:
    assert tracking_option(None, None) is None
    with pytest.raises(ValueError, match="--track must be one of mlflow, tensorboard, got 'wandb'"):
        tracking_option("wandb", None)
    with pytest.raises(ValueError, match="--track-uri needs --track"):
        tracking_option(None, "sqlite:///x.db")


@pytest.mark.parametrize(("kind", "module"), [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_a_missing_package_is_one_line_with_the_install_command(
    kind: str, module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails, find_spec finds nothing
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", *TINY_TRAIN, "--out", str(out), "--track", kind])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lpae: error: --track {kind} needs {module}")
    assert "pip install 'lpae[track]'" in lines[0]
    assert not out.exists()  # refused before training


def test_an_unknown_tracker_is_refused_before_a_study_starts(tmp_path: Path) -> None:
    out = tmp_path / "study"
    result = runner.invoke(app, ["study", "quick", "--out", str(out), "--track", "wandb"])
    assert (
        result.exit_code == 2 and "lpae: error: --track must be one of mlflow, tensorboard" in result.output
    )
    assert not out.exists()


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a TensorBoard log folder's event files: tag -> [(step, value)], read back
    with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_store_mlflow_refuses_stops_the_study_before_it_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    grid = tmp_path / "g.toml"
    grid.write_text('name = "g"\nseeds = [0]\ncriteria = ["l1"]\ndata = ["iris"]\n[train]\nepochs = 1\n')
    out = tmp_path / "study"
    uri = f"file:{tmp_path / 'mlruns'}"  # MLflow 3 refuses its file store unless told otherwise
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    command = ["study", str(grid), "--out", str(out), "--track", "mlflow", "--track-uri", uri]
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"lpae: error: --track mlflow: the tracking store {uri} failed"
    )
    assert not (out / "runs").exists()


@pytest.mark.slow
def test_train_tracks_into_mlflows_default_store_inside_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", *TINY_TRAIN, "--out", str(out), "--track", "mlflow"])
    assert result.exit_code == 0, result.output
    assert result.output == ""  # --quiet stays quiet
    assert (out / "mlflow.db").is_file() and (out / "mlartifacts").is_dir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=[TRAIN_EXPERIMENT])
    assert isinstance(runs, pd.DataFrame) and len(runs) == 1
    row = runs.iloc[0]
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert row["tags.mlflow.runName"] == "run" and row["status"] == "FINISHED"
    assert row["params.loss"] == config["loss"] and row["params.train.epochs"] == "3"
    assert row["metrics.recon_l2"] == metrics["recon_l2"] and row["metrics.epochs_run"] == 3
    history = pd.read_csv(out / "history.csv")
    client = mlflow.MlflowClient()
    logged = client.get_metric_history(row["run_id"], "val_loss")
    assert [(m.step, m.value) for m in logged] == list(
        zip(history["epoch"], history["val_loss"], strict=True)
    )
    names = {a.path for a in client.list_artifacts(row["run_id"])}
    assert names == {"config.json", "metrics.json", "history.csv"}  # no samples: not a VAE
    assert "track" not in (out / "config.json").read_text()  # an output setting, not a run setting


def test_train_tracks_into_tensorboard_event_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    logs = tmp_path / "logs"
    result = runner.invoke(
        app,
        [
            "train",
            *TINY_TRAIN,
            "--model",
            "vae",
            "--out",
            str(out),
            "--track",
            "tensorboard",
            "--track-uri",
            str(logs),
        ],
    )
    assert result.exit_code == 0, result.output
    history = pd.read_csv(out / "history.csv")
    read = scalars(logs / "run")
    for column in history.columns.drop("epoch"):
        expected = [
            (int(e), float(np.float32(v))) for e, v in zip(history["epoch"], history[column], strict=True)
        ]
        assert read[column] == expected, column
    metrics = json.loads((out / "metrics.json").read_text())
    assert read["final/recon_l2"] == [(3, float(np.float32(metrics["recon_l2"])))]
    assert not (out / "tensorboard").exists()  # --track-uri: the log folder given, nothing in the run
