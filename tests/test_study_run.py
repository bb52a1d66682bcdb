"""A tiny study end to end: CLI run, store rows, run folders, rerun skipping, resume, export,
failed and diverged runs, and the process pool giving the same numbers as in-process training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from lpae.cli import app
from lpae.study import Store, parse_grid, run_study
from lpae.study import execute as study_execute
from lpae.study.grid import Grid

runner = CliRunner()
TIMING_KEYS = ("train_seconds",)

TINY = """
name = "tiny"
seeds = [0, 1]
criteria = ["l1", "l2"]
data = ["digits"]
[[models]]
hidden = [16]
latent = 4
[train]
epochs = 2
checkpoint_every = 0
"""


def tiny(text: str = TINY) -> Grid:
    return parse_grid(text, "tiny.toml")


def comparable(rows: list[Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Rows keyed by run key: status, run folder and metrics without timings."""
    return {
        r.key: (r.status, r.run_dir, {k: v for k, v in r.metrics.items() if k not in TIMING_KEYS})
        for r in rows
    }


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study") / "tiny"
    grid_file = out.parent / "tiny.toml"
    grid_file.write_text(TINY)
    result = runner.invoke(
        app, ["study", str(grid_file), "--out", str(out), "--threads", "1", "--quiet", "--no-fuse"]
    )
    assert result.exit_code == 0, result.output
    assert "4 runs trained" in result.output and "report.html" in result.output
    return out


def test_study_writes_rows_run_folders_and_report(tiny_study: Path) -> None:
    with Store(tiny_study, create=False) as store:
        rows = store.rows()
        assert store.meta("name") == "tiny" and "criteria" in (store.meta("grid") or "")
    assert len(rows) == 4 and {r.status for r in rows} == {"done"}
    for row in rows:
        run_dir = tiny_study / row.run_dir
        stored = json.loads((run_dir / "metrics.json").read_text())
        assert stored["recon_l2"] == row.metrics["recon_l2"]
        assert json.loads((run_dir / "config.json").read_text())["loss"] == row.spec["loss"]
        assert row.seconds is not None and row.seconds > 0 and row.attempts == 1
    assert (tiny_study / "report.html").is_file() and (tiny_study / "report.md").is_file()
    assert not list((tiny_study / "runs").glob(".*"))  # no staging leftovers


def test_rerun_skips_finished_runs(tiny_study: Path) -> None:
    with Store(tiny_study, create=False) as store:
        rows = comparable(store.rows())
    result = run_study(tiny(), tiny_study, report=False)
    assert result.trained == 0 and result.skipped == 4
    with Store(tiny_study, create=False) as store:
        assert comparable(store.rows()) == rows


def test_a_different_grid_needs_resume(tiny_study: Path, tmp_path: Path) -> None:
    other = TINY.replace('criteria = ["l1", "l2"]', 'criteria = ["l1", "lp:3"]')
    with pytest.raises(ValueError, match="different grid.*--resume"):
        run_study(tiny(other), tiny_study, report=False)
    grid_file = tmp_path / "other.toml"
    grid_file.write_text(other)
    result = runner.invoke(app, ["study", str(grid_file), "--out", str(tiny_study), "--quiet"])
    assert result.exit_code == 2 and "different grid" in result.stderr


def test_export_csv_and_parquet_are_tidy(tiny_study: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["study", "export", str(tiny_study), "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tiny_study / "results.csv")
    target = tmp_path / "t.parquet"
    result = runner.invoke(
        app, ["study", "export", str(tiny_study), "--format", "parquet", "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    parquet = pd.read_parquet(target)
    for frame in (table, parquet):
        assert len(frame) == 4 and frame["run_id"].is_unique
        for column in (
            "data",
            "loss",
            "seed",
            "latent",
            "hidden",
            "epochs",
            "status",
            "recon_l1",
            "recon_l2",
            "under_trained",  # training health (lpae.study.health)
            "own_metric_failure",
        ):
            assert column in frame.columns, column
        assert sorted(frame["loss"].unique()) == ["lp:p=1", "lp:p=2"] and sorted(frame["seed"].unique()) == [
            0,
            1,
        ]
    result = runner.invoke(app, ["study", "export", str(tiny_study), "--format", "xlsx"])
    assert result.exit_code == 2 and "unknown export format 'xlsx'" in result.stderr
    result = runner.invoke(app, ["study", "export", str(tmp_path / "none")])
    assert result.exit_code == 2 and "not a study folder" in result.stderr


def test_report_command_rewrites_the_report(tiny_study: Path) -> None:
    (tiny_study / "report.md").unlink()
    result = runner.invoke(app, ["report", str(tiny_study)])
    assert result.exit_code == 0 and (tiny_study / "report.md").is_file()
    assert "## Verdict" in (tiny_study / "report.md").read_text()


def test_failed_and_diverged_runs_are_recorded_and_the_study_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = study_execute.train_run

    def flaky(spec: Any, out: Path, **kwargs: Any) -> dict[str, Any]:
        if spec.loss == "lp:p=2" and spec.train.seed == 1:
            raise RuntimeError("boom <b>not bold</b>\nsecond line")
        if spec.loss == "lp:p=1" and spec.train.seed == 1:
            return {"status": "diverged", "reason": "non-finite training loss at epoch 1"}
        return real(spec, out, **kwargs)

    monkeypatch.setattr(study_execute, "train_run", flaky)
    out = tmp_path / "study"
    result = run_study(tiny(), out, threads=1, fuse=False)
    assert result.counts == {"pending": 0, "running": 0, "done": 2, "diverged": 1, "failed": 1}
    with Store(out, create=False) as store:
        by_status = {r.status: r for r in store.rows()}
    assert by_status["failed"].error == "RuntimeError: boom <b>not bold</b>"
    assert by_status["diverged"].error.startswith("non-finite")
    page = (out / "report.html").read_text()
    assert "boom &lt;b&gt;not bold&lt;/b&gt;" in page and "<b>not bold" not in page
    # Failed runs are kept on a plain rerun and trained again with retry_failed.
    monkeypatch.setattr(study_execute, "train_run", real)
    assert run_study(tiny(), out, report=False, threads=1, fuse=False).trained == 0
    again = run_study(tiny(), out, retry_failed=True, report=False, threads=1, fuse=False)
    assert again.trained == 1 and again.counts["done"] == 3 and again.counts["diverged"] == 1


@pytest.mark.slow
def test_process_pool_matches_in_process_training(tiny_study: Path, tmp_path: Path) -> None:
    """Two worker processes with one thread each give bit-identical metrics to one in-process thread."""
    out = tmp_path / "pool"
    result = run_study(tiny(), out, workers=2, report=False, fuse=False)
    assert result.counts["done"] == 4
    with Store(out, create=False) as pooled, Store(tiny_study, create=False) as local:
        assert comparable(pooled.rows()) == comparable(local.rows())


def test_resume_without_grid_uses_the_stored_one(tiny_study: Path) -> None:
    result = runner.invoke(app, ["study", "--resume", "--out", str(tiny_study), "--quiet", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "0 runs trained, 4 already finished" in result.output


def test_units_regroup_identically_on_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups are planned over every run of the grid, then thinned to the unfinished ones."""

    def by_seed(specs: list[Any]) -> list[list[int]]:
        groups: dict[int, list[int]] = {}
        for index, spec in enumerate(specs):
            groups.setdefault(spec.train.seed, []).append(index)
        return list(groups.values())

    monkeypatch.setattr(study_execute, "fuse_groups", by_seed)
    jobs = [study_execute.Job(r.run_id, r.spec, "") for r in tiny().runs]  # l1 s0, l1 s1, l2 s0, l2 s1
    ids = [job.run_id for job in jobs]
    everything = study_execute.make_units(jobs, set(ids))
    assert [[j.run_id for j in u.jobs] for u in everything] == [[ids[0], ids[2]], [ids[1], ids[3]]]
    # Seed 0's group finished: seed 1's group comes back with exactly its members.
    resumed = study_execute.make_units(jobs, {ids[1], ids[3]})
    assert [[j.run_id for j in u.jobs] for u in resumed] == [[ids[1], ids[3]]]
    alone = study_execute.make_units(jobs, set(ids), fuse=False)
    assert [len(u.jobs) for u in alone] == [1, 1, 1, 1]


def test_largest_units_go_first() -> None:
    """Longest-processing-time first: cost = members x epochs x data elements; ties keep grid order."""
    grid = tiny(TINY.replace('data = ["digits"]', 'data = ["iris", "digits"]'))
    jobs = [study_execute.Job(r.run_id, r.spec, "") for r in grid.runs]
    units = [study_execute.Unit((job,)) for job in jobs]
    units.append(study_execute.Unit(tuple(j for j in jobs if j.spec.data == "iris")))  # 4 iris runs
    ordered = study_execute.largest_first(units)
    sizes = {"digits": 1797 * 64, "iris": 150 * 4}
    costs = [study_execute.unit_cost(u, sizes) for u in ordered]
    assert costs == sorted(costs, reverse=True) and costs[0] == 2 * 1797 * 64
    assert [u.jobs[0].spec.data for u in ordered[:4]] == ["digits"] * 4
    digits_units = [u for u in units if len(u.jobs) == 1 and u.jobs[0].spec.data == "digits"]
    assert ordered[:4] == digits_units  # equal costs: grid order


@pytest.mark.slow
def test_fused_study_matches_runs_trained_alone(tiny_study: Path, tmp_path: Path) -> None:
    out = tmp_path / "fused"
    run_study(tiny(), out, threads=1, report=False, fuse=True)
    with Store(out, create=False) as fused, Store(tiny_study, create=False) as alone:
        fused_rows, alone_rows = comparable(fused.rows()), comparable(alone.rows())
    assert fused_rows.keys() == alone_rows.keys()
    for key, (status, run_dir, metrics) in fused_rows.items():
        assert status == alone_rows[key][0] == "done"
        assert json.loads((out / run_dir / "config.json").read_text()).get("fused") is True
        for name in ("recon_l1", "recon_l2"):
            assert metrics[name] == pytest.approx(alone_rows[key][2][name], rel=1e-4)


def test_a_second_study_in_the_same_folder_is_refused(tiny_study: Path) -> None:
    from lpae.study.runner import study_lock

    with study_lock(tiny_study):
        result = runner.invoke(app, ["study", "--resume", "--out", str(tiny_study), "--quiet"])
    assert result.exit_code == 2 and "another lpae study is running" in result.stderr
