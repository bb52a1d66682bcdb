"""Users' files in study grids: relative paths resolved against the grid's folder, the file's
fingerprint in each run's key and the exported table, the one-line error when a file changed
before a resume, and `lpae advise --grid` followed by `lpae study` on a CSV file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lpae.cli import app
from lpae.data.fingerprint import fingerprint
from lpae.study import Store, load_grid, run_study, stored_grid

runner = CliRunner()

GRID = """
name = "files"
seeds = [0]
criteria = ["l1", "l2"]
data = ["tables/noisy.csv:label=kind", "tables/plain.parquet", "tables/bare.csv", "iris"]
[[models]]
hidden = [8]
latent = 2
[train]
epochs = 2
checkpoint_every = 0
"""


def write_tables(folder: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    x = rng.normal(size=(40, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame.assign(kind=np.where(x[:, 0] > 0, "up", "down")).to_csv(folder / "tables/noisy.csv", index=False)
    frame.to_parquet(folder / "tables/plain.parquet")
    frame.to_csv(folder / "tables/bare.csv", index=False, header=False)


@pytest.fixture
def grid_file(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    write_tables(project)
    path = project / "grid.toml"
    path.write_text(GRID)
    return path


def test_relative_paths_resolve_against_the_grid_folder_and_keys_carry_fingerprints(
    grid_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # not the grid's folder
    grid = load_grid(grid_file)
    csv = (grid_file.parent / "tables/noisy.csv").resolve()
    by_data = {run.spec.data: run for run in grid.runs}
    assert set(by_data) == {
        f"{csv}:label=kind",
        str((grid_file.parent / "tables/plain.parquet").resolve()),
        str((grid_file.parent / "tables/bare.csv").resolve()),
        "iris",
    }
    assert by_data[f"{csv}:label=kind"].fingerprint == fingerprint(csv)
    assert '"data_fingerprint":"sha256:' in by_data[f"{csv}:label=kind"].key
    assert by_data["iris"].fingerprint is None and "data_fingerprint" not in by_data["iris"].key
    assert by_data[f"{csv}:label=kind"].dir_path.startswith("runs/noisy.csv_label-kind--")
    # The same grid loaded from its own folder plans the same runs.
    monkeypatch.chdir(grid_file.parent)
    assert [r.key for r in load_grid("grid.toml").runs] == [r.key for r in grid.runs]


def test_study_on_files_runs_exports_paths_and_fingerprints_and_refuses_a_changed_file(
    grid_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "study"
    result = run_study(load_grid(grid_file), out, threads=1, report=False)
    assert result.counts["done"] == 8, result.counts
    table = pd.read_csv(Path(runner.invoke(app, ["study", "export", str(out)]).output.split()[-1]))
    csv = (grid_file.parent / "tables/noisy.csv").resolve()
    on_csv = table[table["data"] == f"{csv}:label=kind"]
    assert len(on_csv) == 2 and set(on_csv["data_fingerprint"]) == {fingerprint(csv)}
    assert table[table["data"] == "iris"]["data_fingerprint"].isna().all()
    assert table["data_fingerprint"].notna().sum() == 6 and set(table["status"]) == {"done"}

    original = csv.read_bytes()
    write_tables(grid_file.parent, seed=1)  # the same layout, other values
    before = (out / "study.sqlite").read_bytes()
    for args in (
        ["study", str(grid_file), "--out", str(out), "--resume", "--quiet", "--no-report"],
        ["study", "--resume", "--out", str(out), "--quiet", "--no-report"],  # the stored grid
    ):
        failed = runner.invoke(app, args)
        assert failed.exit_code == 2, failed.output
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"lpae: error: {csv}: the file changed"), lines
        assert "restore the file" in lines[0] and "--out" in lines[0]
        assert "pass --discard-stale to delete its 2 run(s) on the old content" in lines[0]
        assert "anew; 6 in all, on 3 changed files, or run" in lines[0]
    assert (out / "study.sqlite").read_bytes() == before  # nothing recorded

    csv.write_bytes(original)
    os.utime(csv)
    write_tables(grid_file.parent, seed=0)  # the parquet file back as it was, too
    resumed = run_study(stored_grid(out), out, resume=True, threads=1, report=False)
    assert (resumed.trained, resumed.skipped) == (0, 8)

    # Changed on purpose: --discard-stale deletes the old runs (rows and folders), trains them anew.
    with Store(out, create=False) as store:
        old = {r.run_id: r.run_dir for r in store.rows() if "data_fingerprint" in r.key}
        kept = {r.run_id: r.attempts for r in store.rows() if "data_fingerprint" not in r.key}
    write_tables(grid_file.parent, seed=1)
    done = runner.invoke(
        app, ["study", str(grid_file), "--out", str(out), "--discard-stale", "--quiet", "--no-report"]
    )
    assert done.exit_code == 0, done.output
    with Store(out, create=False) as store:
        rows = store.rows()
    assert len(rows) == 8 and {r.status for r in rows} == {"done"}
    assert not set(old) & {r.run_id for r in rows}
    assert all(not (out / run_dir).exists() for run_dir in old.values())
    assert {r.run_id: r.attempts for r in rows if r.run_id in kept} == kept  # iris runs not redone
    fresh = {r.key for r in rows if f'"data":"{csv}:label=kind"' in r.key}
    assert len(fresh) == 2 and all(fingerprint(csv) in key for key in fresh)


def test_bad_file_entries_name_the_file(grid_file: Path) -> None:
    folder = grid_file.parent
    cases = {
        'data = ["tables/missing.csv"]': "tables/missing.csv",
        'data = ["tables/noisy.csv:colour=red"]': "unknown option(s) colour",
    }
    for line, message in cases.items():
        path = folder / "bad.toml"
        path.write_text(GRID.replace(GRID.splitlines()[4], line))
        with pytest.raises(ValueError, match="bad.toml: ") as error:
            load_grid(path)
        assert message in str(error.value)
    optional = folder / "optional.toml"
    optional.write_text(
        GRID.replace(GRID.splitlines()[4], 'data = [{spec = "gone.csv", optional = true}, "iris"]')
    )
    grid = load_grid(optional)
    assert {r.spec.data for r in grid.runs} == {"iris"} and "gone.csv" in grid.notes[0]


@pytest.mark.slow
def test_advise_grid_runs_as_a_study(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(120, 2))
    x = codes @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(120, 5))
    pd.DataFrame(x, columns=list("abcde")).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "grids").mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    lpae = [sys.executable, "-m", "lpae"]
    advise = subprocess.run(
        [*lpae, "advise", "--data", "t.csv", "--grid", "grids/g.toml", "--epochs", "2", "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert advise.returncode == 0, advise.stderr
    grid_text = (tmp_path / "grids/g.toml").read_text()
    assert str((tmp_path / "t.csv").resolve()) in grid_text
    study = subprocess.run(
        [*lpae, "study", "grids/g.toml", "--out", "s", "--quiet", "--no-report"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert study.returncode == 0, study.stderr
    with Store(tmp_path / "s", create=False) as store:
        counts = store.counts()
    n_runs = len(load_grid(tmp_path / "grids/g.toml").runs)
    assert n_runs >= 6 and counts["done"] == n_runs, counts


def test_a_file_changed_while_the_study_runs_fails_its_runs_instead_of_training_them(
    grid_file: Path, tmp_path: Path
) -> None:
    from lpae.study.execute import Job, Unit, train_unit

    planned = next(r for r in load_grid(grid_file).runs if r.fingerprint is not None)
    job = Job(planned.run_id, planned.spec, str(tmp_path / "run"), planned.fingerprint)
    write_tables(grid_file.parent, seed=2)  # edited after planning
    (outcome,) = train_unit(Unit((job,)))
    assert outcome.status == "failed"
    assert outcome.error.startswith(
        f"ValueError: {planned.spec.data.partition(':')[0]} changed while the study"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_file_study_killed_then_resumed_from_another_folder_equals_an_uninterrupted_one(
    grid_file: Path, tmp_path: Path
) -> None:
    """SIGKILL after the first finished run; `lpae study --resume --out` from another folder
    rebuilds the stored grid with its paths resolved against the grid's own folder."""
    import signal
    import sqlite3
    import time

    reference = tmp_path / "reference"
    run_study(load_grid(grid_file), reference, threads=1, report=False, fuse=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = tmp_path / "killed"
    flags = ["--threads", "1", "--no-fuse", "--quiet", "--no-report"]
    process = subprocess.Popen(
        [sys.executable, "-m", "lpae", "study", "grid.toml", "--out", str(out), *flags],
        cwd=grid_file.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip

    def done() -> int:
        try:
            with sqlite3.connect(f"file:{out / 'study.sqlite'}?mode=ro", uri=True, timeout=5) as db:
                return int(db.execute("SELECT COUNT(*) FROM runs WHERE status = 'done'").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    deadline = time.monotonic() + 240
    while done() < 1:
        assert process.poll() is None and time.monotonic() < deadline, "no run finished in time"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert done() < 8, "the study finished before it could be killed"
    resumed = subprocess.run(
        [sys.executable, "-m", "lpae", "study", "--resume", "--out", str(out), *flags],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    timing = ("train_seconds",)
    with Store(reference, create=False) as expected, Store(out, create=False) as got:
        assert {
            r.key: (r.status, {k: v for k, v in r.metrics.items() if k not in timing}) for r in got.rows()
        } == {
            r.key: (r.status, {k: v for k, v in r.metrics.items() if k not in timing})
            for r in expected.rows()
        }
