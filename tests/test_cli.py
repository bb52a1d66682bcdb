"""The CLI end to end: train, eval, listings, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpae.cli import app

runner = CliRunner()


def test_train_then_eval_reproduces_stored_metrics(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            "digits",
            "--loss",
            "lp:0.5",
            "--latent",
            "8",
            "--hidden",
            "64",
            "--epochs",
            "2",
            "--seed",
            "0",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("model.safetensors", "config.json", "history.csv", "metrics.json"):
        assert (out / name).is_file()
    stored = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert stored["status"] == "done"
    assert config["loss"] == "lp:p=0.5"
    assert config["torch_version"] and config["lpae_version"]
    assert config["data"]["preprocess"]["method"] == "standard"
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,train_loss,val_loss") and len(history) == 3

    report = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", str(out), "--json", str(report)])
    assert result.exit_code == 0, result.output
    again = json.loads(report.read_text())
    assert again["recon_l1"] == pytest.approx(stored["recon_l1"], rel=1e-6)
    assert again["recon_l2"] == pytest.approx(stored["recon_l2"], rel=1e-6)


def test_listings() -> None:
    result = runner.invoke(app, ["losses"])
    assert result.exit_code == 0 and "lp:p" in result.output and "l1 = lp:1" in result.output
    result = runner.invoke(app, ["datasets"])
    assert result.exit_code == 0 and "digits" in result.output


BAD_TRAIN_ARGS = [
    (["--loss", "lp:-1"], "lp:-1"),
    (["--loss", "lp:abc"], "lp:abc"),
    (["--loss", "nosuch"], "unknown criterion 'nosuch'"),
    (["--data", "nosuch"], "unknown data set 'nosuch'"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--epochs", "-3"], "epochs must be a positive integer"),
    (["--latent", "0"], "latent size must be a positive integer"),
    (["--epochs", "abc"], "--epochs"),
]


@pytest.mark.parametrize(("args", "message"), BAD_TRAIN_ARGS)
def test_bad_train_input_is_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["train", "--out", str(out), "--epochs", "1", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lpae: error:") and message in lines[0]
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make", ["missing", "foreign"])
def test_eval_rejects_missing_or_foreign_dir(tmp_path: Path, make: str) -> None:
    target = tmp_path / "run"
    if make == "foreign":
        target.mkdir()
        (target / "config.json").write_text("{}")
    result = runner.invoke(app, ["eval", str(target)])
    assert result.exit_code == 2
    assert result.stderr.startswith("lpae: error:") and len(result.stderr.strip().splitlines()) == 1


def test_existing_out_is_not_overwritten(digits_run: Path) -> None:
    before = (digits_run / "metrics.json").read_text()
    result = runner.invoke(app, ["train", "--out", str(digits_run), "--epochs", "1"])
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert (digits_run / "metrics.json").read_text() == before


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    """The installed entry point, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "lpae", "train", "--loss", "lp:0", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "lpae: error: spec 'lp:0': p=0: '0' is out of range: expected a number > 0"
    ]
