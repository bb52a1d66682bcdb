"""`lpae contrast` end to end: the three modes, --json and --plot, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpae.cli import app

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_synthetic_mode_writes_json_and_plot(tmp_path: Path) -> None:
    report_path, plot_path = tmp_path / "s.json", tmp_path / "s.png"
    args = ["contrast", "--distribution", "uniform", "--dims", "2,10,100", "--k", "0.5,1,2,inf"]
    args += ["--n-points", "50", "--trials", "3", "--query", "point", "--seed", "1"]
    result = runner.invoke(app, [*args, "--json", str(report_path), "--plot", str(plot_path)])
    assert result.exit_code == 0, result.output
    assert "relative contrast" in result.output and "growth exponents" in result.output
    report = json.loads(report_path.read_text())  # strict JSON: no NaN or Infinity
    assert report["k"] == [0.5, 1, 2, "inf"]
    assert {(r["d"], r["k"]) for r in report["rows"]} == {(d, k) for d in (2, 10, 100) for k in report["k"]}
    assert [f["k"] for f in report["fits"]] == report["k"]
    assert [r["d"] for r in report["l2_below_l1"]] == [2, 10, 100]
    assert plot_path.read_bytes()[:8] == PNG_MAGIC


def test_data_mode(tmp_path: Path) -> None:
    report_path, plot_path = tmp_path / "d.json", tmp_path / "d.png"
    args = ["contrast", "--data", "digits", "--max-points", "200", "--neighbors", "3", "--bootstrap", "200"]
    result = runner.invoke(app, [*args, "--json", str(report_path), "--plot", str(plot_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["mode"] == "data" and report["k"] == [0.5, 1, 2] and report["preprocess"] == "standard"
    assert [a["k"] for a in report["agreement"]] == [0.5, 1, 2]
    assert {"count", "fraction", "ci_low", "ci_high"} <= set(report["agreement"][0])
    assert all("summary" in c for c in report["comparisons"])
    assert plot_path.read_bytes()[:8] == PNG_MAGIC


def test_latent_mode(tmp_path: Path, digits_run: Path) -> None:
    report_path, plot_path = tmp_path / "l.json", tmp_path / "l.png"
    args = ["contrast", "--run", str(digits_run), "--k", "1,2", "--neighbors", "3", "--bootstrap", "200"]
    result = runner.invoke(app, [*args, "--json", str(report_path), "--plot", str(plot_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["latent"]["n_features"] == 8 and report["raw"]["n_features"] == 64
    assert len(report["latent_vs_raw"]) == 2
    assert plot_path.read_bytes()[:8] == PNG_MAGIC


def test_unlabelled_data_with_neighbors_zero(tmp_path: Path) -> None:
    report_path = tmp_path / "u.json"
    args = ["contrast", "--data", "uniform:n=40,dim=3", "--neighbors", "0", "--json", str(report_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "agreement" not in json.loads(report_path.read_text())


BAD_ARGS = [
    (["--distribution", "uniform", "--k", "0"], "must be > 0"),
    (["--distribution", "uniform", "--k", "-1"], "must be > 0"),
    (["--distribution", "uniform", "--k", "0.5,x"], "'x' is not a number"),
    (["--distribution", "uniform", "--dims", ""], "at least one dimension"),
    (["--distribution", "uniform", "--dims", "10,-5"], "--dims must be positive integers"),
    (["--distribution", "uniform", "--n-points", "1"], "n-points must be at least 2"),
    (["--distribution", "cauchy"], "unknown distribution 'cauchy'"),
    (["--data", "uniform:n=50,dim=5"], "has no labels"),
    (["--data", "digits", "--k", "0"], "must be > 0"),
    (["--data", "nosuch"], "unknown data set 'nosuch'"),
    (["--data", "digits", "--dims", "10"], "--dims applies to synthetic mode only"),
    (["--distribution", "normal", "--neighbors", "3"], "--neighbors applies to data and latent mode"),
    ([], "choose exactly one mode"),
    (["--distribution", "uniform", "--data", "digits"], "choose exactly one mode"),
    (["--run", "no/such/run"], "no such run directory"),
    (["--data", "digits", "--neighbors", "-1"], "--neighbors must be 0 or more"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGS)
def test_bad_arguments_are_one_line_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    report_path = tmp_path / "r.json"
    result = runner.invoke(app, ["contrast", *args, "--json", str(report_path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lpae: error:") and message in lines[0], lines
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder_is_reported_before_any_work(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["contrast", "--distribution", "uniform", "--plot", str(tmp_path / "no" / "p.png")]
    )
    assert result.exit_code == 2 and "--plot: folder" in result.stderr
