"""Terminal output at 80 columns without a terminal (a log): every spec and number whole, progress
as plain lines, durations with units (lpae.cli.tables, lpae.plain_progress)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from lpae.cli.contrast import k_name, pm
from lpae.cli.tables import Col, show_table
from lpae.criteria import CRITERIA
from lpae.data import DATASETS
from lpae.plain_progress import LineRate, clock


def lpae(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process, stdout a pipe, at COLUMNS=80."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "lpae", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_losses_and_datasets_keep_every_spec_whole() -> None:
    for command, registry in (("losses", CRITERIA), ("datasets", DATASETS)):
        proc = lpae(command)
        assert proc.returncode == 0, proc.stderr
        assert "…" not in proc.stdout
        for entry in registry.entries():
            assert entry.signature() in proc.stdout, (command, entry.signature())


def test_contrast_keeps_every_number_whole(tmp_path: Path) -> None:
    report_file = tmp_path / "c.json"
    proc = lpae(
        "contrast", "--distribution", "uniform", "--dims", "2,10,100", "--n-points", "100", "--trials", "2",
        "--json", str(report_file),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    report = json.loads(report_file.read_text())
    for row in report["rows"]:  # every cell of the contrast tables, as the table formats it
        for key in ("rel_contrast", "abs_contrast"):
            cell = pm(row[key], row[f"{key}_se"])
            assert any(f" {cell} " in line for line in proc.stdout.splitlines()), cell
        assert k_name(row["k"]) in proc.stdout
    assert max(map(len, proc.stdout.splitlines())) <= 80


def test_study_and_train_print_plain_progress_lines(tmp_path: Path) -> None:
    grid = tmp_path / "g.toml"
    grid.write_text(
        'name = "tiny"\nseeds = [0]\ncriteria = ["l2", "l1"]\ndata = ["iris"]\n'
        "[[models]]\nhidden = [8]\nlatent = 2\n[train]\nepochs = 2\n"
    )
    proc = lpae("study", str(grid), "--out", str(tmp_path / "s"), "--no-fuse")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("study: ")]
    assert lines and lines[-1].startswith("study: 2 of 2 runs (done 2, diverged 0, failed 0)"), proc.stderr
    assert "elapsed, about 0:00 left" in lines[-1] and "…" not in proc.stderr + proc.stdout
    proc = lpae("train", "--data", "iris", "--epochs", "3", "--latent", "2", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    epochs = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]
    assert epochs[0].startswith("epoch 1/3  train ") and epochs[-1].startswith("epoch 3/3  train ")
    assert "samples/s" in epochs[-1] and "elapsed" in epochs[-1]
    quiet = lpae("train", "--data", "iris", "--epochs", "2", "--out", str(tmp_path / "q"), "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_a_narrow_listing_drops_columns_by_priority_and_says_so() -> None:
    console = Console(width=44, record=True, force_terminal=False)
    columns = [Col("spec"), Col("a", drop=2), Col("long text", whole=False, drop=1)]
    rows = [["gennorm:p=learned,scale=learned", "yes", "a sentence " * 5]]
    show_table(console, "t", columns, rows)
    text = console.export_text()
    assert (
        "gennorm:p=learned,scale=learned" in text and "left out at this width, 44 columns: long text;" in text
    )


def test_a_spec_longer_than_the_line_prints_records() -> None:
    console = Console(width=30, record=True, force_terminal=False)
    spec = "synthetic:n=2000,dim=16,latent=2,noise=gaussian"
    show_table(console, "t", [Col("spec"), Col("kind", drop=1)], [[spec, "tabular"]])
    text = console.export_text()
    assert spec in text and "kind: tabular" in text


def test_a_wide_table_of_numbers_splits_into_parts() -> None:
    console = Console(width=50, record=True, force_terminal=False)
    columns = [Col("d", key=True), *(Col(f"L{k}", justify="right") for k in range(6))]
    rows = [[str(d), *(f"{1.23456 * d * k:.4g} ±0.01" for k in range(6))] for d in (2, 10)]
    show_table(console, "t", columns, rows, split=True)
    text = console.export_text()
    assert "t (1 of " in text and all(cell in text for row in rows for cell in row)
    assert max(map(len, text.splitlines())) <= 50


def test_clock_and_line_rate() -> None:
    assert (clock(7), clock(725), clock(3723), clock(math.nan)) == ("0:07", "12:05", "1:02:03", "?")
    rate = LineRate(100)
    assert rate.due(1)  # the first step
    assert not rate.due(2)  # too soon, too little
    assert rate.due(100)  # the last step, always
    assert math.isnan(LineRate(5).remaining(0))


@pytest.mark.parametrize("done", [1, 50])
def test_remaining_is_the_average_pace(done: int) -> None:
    rate = LineRate(100)
    rate.started -= 10.0  # ten seconds in
    assert rate.remaining(done) == pytest.approx(10.0 / done * (100 - done), rel=0.01)
