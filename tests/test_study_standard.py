"""Local copies of standard benchmarks in use: a tiny conv AE trains on CIFAR-10-shaped files
through `lpae train`; in a study grid a set's ``path=`` resolves against the grid's folder, its
files' fingerprint keys its runs, and a changed batch file stops a resume with one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpae.data.fingerprint import files_fingerprint
from lpae.study import load_grid, run_study
from lpae.study.files import spec_path
from test_data_standard import write_cifar_folder, write_idx_folder

runner = CliRunner()

GRID = """
name = "standard"
seeds = [0]
criteria = ["l2"]
data = ["cifar10:path=local", "mnist:path=idx,split=train", "fashion_mnist:split=test,path=idx"]
[[models]]
arch = "conv"
hidden = [4, 8]
latent = 4
[train]
epochs = 1
batch_size = 16
checkpoint_every = 0
"""


def test_conv_ae_trains_on_cifar_files_through_the_cli(tmp_path: Path) -> None:
    from lpae.cli import app

    write_cifar_folder(tmp_path / "data")
    out = tmp_path / "run"
    args = ["train", "--data", f"cifar10:path={tmp_path / 'data'}", "--arch", "conv", "--hidden", "4,8"]
    result = runner.invoke(app, [*args, "--latent", "4", "--epochs", "2", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["shape"] == [3, 32, 32] and config["data"]["spec"].startswith("cifar10:path=")
    assert config["model"]["arch"] == "conv" and config["data"]["n_samples"] == 40
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "done" and metrics["epochs_run"] == 2
    assert math.isfinite(metrics["recon_l2"]) and math.isfinite(metrics["psnr"])


@pytest.fixture
def grid_file(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    write_cifar_folder(project / "local")
    write_idx_folder(project / "idx", gz=True)
    path = project / "grid.toml"
    path.write_text(GRID)
    return path


def test_grid_resolves_paths_keys_runs_by_the_files_and_refuses_a_changed_file(
    grid_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lpae.cli import app

    monkeypatch.chdir(tmp_path)  # not the grid's folder
    grid = load_grid(grid_file)
    project = grid_file.parent.resolve()
    by_data = {run.spec.data: run for run in grid.runs}
    cifar = f"cifar10:path={project / 'local'}"
    assert set(by_data) == {
        cifar,
        f"mnist:split=train,path={project / 'idx'}",
        f"fashion_mnist:path={project / 'idx'},split=test",
    }
    batches = sorted((project / "local/cifar-10-batches-bin").glob("*.bin"))
    assert by_data[cifar].fingerprint == files_fingerprint(batches)
    assert '"data_fingerprint":"sha256:' in by_data[cifar].key
    assert by_data[cifar].dir_path.startswith("runs/cifar10_path-local--lp_p-2--s0--")
    # every split of one copy shares the files' fingerprint, keyed by the copy (not the split)
    assert spec_path(f"mnist:split=train,path={project / 'idx'}") == f"mnist:path={project / 'idx'}"
    assert (
        grid.files[f"mnist:path={project / 'idx'}"]
        == by_data[f"mnist:split=train,path={project / 'idx'}"].fingerprint
    )
    monkeypatch.chdir(project)
    assert [r.key for r in load_grid("grid.toml").runs] == [r.key for r in grid.runs]

    cifar_only = grid_file.with_name("cifar.toml")
    cifar_only.write_text(GRID.replace(GRID.splitlines()[4], 'data = ["cifar10:path=local"]'))
    out = tmp_path / "study"
    result = run_study(load_grid(cifar_only), out, threads=1, report=False)
    assert result.counts["done"] == 1, result.counts
    batch = project / "local/cifar-10-batches-bin/data_batch_2.bin"
    raw = bytearray(batch.read_bytes())
    raw[5] ^= 0xFF  # one pixel edited
    batch.write_bytes(bytes(raw))
    failed = runner.invoke(
        app, ["study", str(cifar_only), "--out", str(out), "--resume", "--quiet", "--no-report"]
    )
    assert failed.exit_code == 2, failed.output
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lpae: error: {cifar}: the file changed"), lines


def test_grid_errors_for_local_sets(grid_file: Path) -> None:
    bad = grid_file.with_name("bad.toml")
    bad.write_text(GRID.replace(GRID.splitlines()[4], 'data = ["cifar10:path=elsewhere"]'))
    with pytest.raises(
        ValueError, match=r"bad\.toml: data: data set 'cifar10': path=elsewhere: .*elsewhere: no such"
    ):
        load_grid(bad)
    bad.write_text(
        GRID.replace(GRID.splitlines()[4], 'data = [{spec = "cifar10:path=idx", optional = true}, "faces"]')
    )
    grid = load_grid(bad)  # the folder holds no CIFAR batches: skipped, with the reason
    assert {r.spec.data for r in grid.runs} == {"faces"} and "data_batch_1.bin is missing" in grid.notes[0]


def test_advise_grid_names_the_folder_absolutely(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lpae.advise import study_grid

    write_cifar_folder(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    text = study_grid("cifar10:path=data,split=train", ["l2"], {"hidden": [8], "latent": 2, "epochs": 2})
    folder = (tmp_path / "data").resolve()
    assert f'data = ["cifar10:path={folder},split=train"]' in text
    (tmp_path / "grids").mkdir()
    (tmp_path / "grids/g.toml").write_text(text)  # read from another folder: the same copy
    assert {r.spec.data for r in load_grid(tmp_path / "grids/g.toml").runs} == {
        f"cifar10:path={folder},split=train"
    }
