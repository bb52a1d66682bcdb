"""A real divergence (issue 19, item 8): no planted loss, a learning rate that blows up.

Adam moves every weight by about lr per step whatever its gradient, so with lr = 1e30 the first
step puts the weights near 1e30 and the next forward pass (two layers) overflows float32: the
loss is non-finite at epoch 1, deterministically on any machine.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lpae.cli import app
from lpae.study import Store, parse_grid, run_study

runner = CliRunner()
TINY = ["--data", "iris", "--epochs", "2", "--latent", "2", "--hidden", "8"]


def test_a_blown_up_learning_rate_diverges_with_exit_3(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", *TINY, "--lr", "1e30", "--out", str(out), "--quiet"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 3 and len(lines) == 1, result.stderr
    assert lines[0].startswith("lpae: error: training diverged: non-finite") and "smaller --lr" in lines[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["reason"].startswith("non-finite")
    # the same command at an ordinary learning rate trains: the divergence is the step size's
    again = runner.invoke(app, ["train", *TINY, "--lr", "1e-3", "--out", str(tmp_path / "ok"), "--quiet"])
    assert again.exit_code == 0, again.stderr


def test_a_diverging_study_run_is_recorded_as_diverged(tmp_path: Path) -> None:
    grid = parse_grid(
        'name = "blowup"\nseeds = [0]\ncriteria = ["l2"]\ndata = ["iris"]\n'
        "[[models]]\nhidden = [8]\nlatent = 2\n[train]\nepochs = 2\nlr = 1e30\ncheckpoint_every = 0\n",
        "blowup.toml",
    )
    result = run_study(grid, tmp_path / "study", report=False, threads=1, fuse=False)
    assert result.counts["diverged"] == 1 and result.counts["failed"] == 0
    with Store(tmp_path / "study", create=False) as store:
        (row,) = store.rows()
    assert row.status == "diverged" and row.error.startswith("non-finite")
