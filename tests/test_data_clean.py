"""A clean reference beside a user's file (``clean=PATH``, lpae.data.clean): aligned with whatever
the data file loses on loading, clean_* metrics against it, the report's known-answer checks
with a declared noise, its place in a study's fingerprint, and every bad input as one error."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lpae.cli import app
from lpae.config import ModelSettings, RunSpec, TrainSettings
from lpae.data import load
from lpae.experiment import train_run
from lpae.study import load_grid, run_study

runner = CliRunner()


def signal_and_noise(n: int = 60, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = rng.normal(size=(n, d))
    return clean, clean + 0.2 * rng.normal(size=(n, d))


@pytest.fixture
def table(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """noisy.csv: columns a..d, a label, a text column, a constant column, one NaN (row 5);
    clean.csv: the clean a..d and the constant, no label, in another column order."""
    clean, noisy = signal_and_noise()
    frame = pd.DataFrame(noisy, columns=list("abcd"))
    frame.loc[5, "b"] = np.nan
    frame = frame.assign(kind=np.where(noisy[:, 0] > 0, "up", "down"), note="x", flat=1.0)
    frame.to_csv(tmp_path / "noisy.csv", index=False)
    reference = pd.DataFrame(clean, columns=list("abcd")).assign(flat=1.0)
    reference[["flat", "d", "c", "b", "a"]].to_csv(tmp_path / "clean.csv", index=False)
    return tmp_path, clean, noisy


def quiet_load(spec: str, nan: str = "error") -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(spec, nan=nan)


def test_table_reference_follows_dropped_rows_and_columns(table: tuple[Path, np.ndarray, np.ndarray]) -> None:
    folder, clean, noisy = table
    dataset = quiet_load(f"{folder}/noisy.csv:label=kind,clean={folder}/clean.csv,noise=gaussian", nan="drop")
    kept = np.delete(np.arange(60), 5)
    assert dataset.x.shape == (59, 4) and dataset.y is not None
    np.testing.assert_array_equal(dataset.clean, clean[kept].astype(np.float32))
    np.testing.assert_array_equal(dataset.x, noisy[kept].astype(np.float32))
    assert dataset.info["noise"] == "gaussian" and dataset.info["clean_source"] == f"{folder}/clean.csv"
    # The split keeps rows and their clean values together.
    part = dataset.subset(np.array([0, 7, 30]))
    np.testing.assert_array_equal(part.clean, clean[kept][[0, 7, 30]].astype(np.float32))


def test_array_references(tmp_path: Path) -> None:
    clean, noisy = signal_and_noise()
    noisy[:, 2] = 3.0  # a constant column: dropped from both
    np.save(tmp_path / "noisy.npy", noisy)
    np.savez(tmp_path / "clean.npz", signal=clean)
    np.savez(tmp_path / "noisy.npz", signal=noisy)
    with pytest.raises(ValueError, match="clean.npz: no array 'x'"):  # a .npz reference is read with key=
        quiet_load(f"{tmp_path}/noisy.npy:clean={tmp_path}/clean.npz")
    dataset = quiet_load(f"{tmp_path}/noisy.npz:key=signal,clean={tmp_path}/clean.npz")
    np.testing.assert_array_equal(dataset.clean, clean[:, [0, 1, 3]].astype(np.float32))
    images = np.random.default_rng(1).random((10, 5, 5))
    np.save(tmp_path / "img.npy", images + 0.1)
    np.save(tmp_path / "img_clean.npy", images)
    found = load(f"{tmp_path}/img.npy:clean={tmp_path}/img_clean.npy")
    assert found.kind == "image" and found.clean.shape == (10, 1, 5, 5)
    np.testing.assert_array_equal(found.clean[:, 0], images.astype(np.float32))


def test_clean_metrics_against_the_reference(tmp_path: Path) -> None:
    """A reference equal to the data gives clean_* equal to recon_*; a real one gives its own."""
    clean, noisy = signal_and_noise(n=80)
    pd.DataFrame(noisy, columns=list("abcd")).to_csv(tmp_path / "noisy.csv", index=False)
    pd.DataFrame(noisy, columns=list("abcd")).to_csv(tmp_path / "same.csv", index=False)
    pd.DataFrame(clean, columns=list("abcd")).to_csv(tmp_path / "clean.csv", index=False)
    settings = {"model": ModelSettings(hidden=(8,), latent=2), "train": TrainSettings(epochs=2)}
    same = train_run(
        RunSpec(data=f"{tmp_path}/noisy.csv:clean={tmp_path}/same.csv", **settings), tmp_path / "a"
    )
    for key in ("l1", "l2", "l1_orig", "l2_orig"):
        assert same[f"clean_{key}"] == pytest.approx(same[f"recon_{key}"], rel=1e-6), key
    real = train_run(
        RunSpec(data=f"{tmp_path}/noisy.csv:clean={tmp_path}/clean.csv", **settings), tmp_path / "b"
    )
    assert real["recon_l2"] == same["recon_l2"]  # same data, same seed: the same model
    assert real["clean_l2"] != real["recon_l2"]
    plain = train_run(RunSpec(data=f"{tmp_path}/noisy.csv", **settings), tmp_path / "c")
    assert "clean_l2" not in plain


def test_bad_references_are_one_error(table: tuple[Path, np.ndarray, np.ndarray]) -> None:
    folder, clean, _ = table
    pd.DataFrame(clean[:50], columns=list("abcd")).assign(flat=1.0).to_csv(folder / "short.csv", index=False)
    pd.DataFrame(clean[:, :3], columns=list("abc")).assign(flat=1.0).to_csv(
        folder / "narrow.csv", index=False
    )
    holed = pd.DataFrame(clean, columns=list("abcd")).assign(flat=1.0)
    holed.loc[40, "c"] = np.nan  # a row the data keeps
    holed.to_csv(folder / "holed.csv", index=False)
    np.save(folder / "arr.npy", clean)
    np.save(folder / "arr_short.npy", clean[:10])
    noisy = f"{folder}/noisy.csv:label=kind"
    cases = {
        f"{noisy},clean={folder}/nowhere.csv": "clean reference .*nowhere.csv: no such file",
        f"{noisy},clean={folder}/short.csv": "short.csv: has 50 rows, .*noisy.csv has 60; the same rows",
        f"{noisy},clean={folder}/narrow.csv": "narrow.csv: lacks column.* d of .*noisy.csv",
        f"{noisy},clean={folder}/holed.csv": "holed.csv: 1 NaN or infinite value.*must be complete",
        f"{noisy},clean={folder}/arr.npy": "arr.npy: is an array, but .*noisy.csv is a table",
        f"{folder}/arr.npy:clean={folder}/arr_short.npy": r"has shape \(10, 4\), the data has \(60, 4\)",
        f"{noisy},noise=gaussian": "noise= describes the data against a clean reference; add clean=PATH",
        f"{noisy},clean={folder}/clean.csv,noise=pink": "unknown noise=pink; allowed: gaussian, laplace",
    }
    for spec, message in cases.items():
        with pytest.raises(ValueError, match=message):
            quiet_load(spec, nan="drop")
    result = runner.invoke(
        app,
        ["train", "--data", f"{noisy},clean={folder}/short.csv", "--nan", "drop", "--out", str(folder / "r")],
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("lpae: error: ") and "short.csv: has 50 rows" in lines[-1]
    assert not any(line.startswith("Traceback") for line in lines)
    assert not (folder / "r").exists() and not (folder / "r.partial").exists()


@pytest.mark.slow
def test_study_with_a_reference_reports_known_answers_and_fingerprints_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(150, 2))
    clean = np.tanh(codes @ rng.normal(size=(2, 6)))
    noisy = clean + 0.3 * rng.normal(size=clean.shape)
    (tmp_path / "data").mkdir()
    pd.DataFrame(noisy).to_csv(tmp_path / "data/noisy.csv", index=False, header=False)
    pd.DataFrame(clean).to_csv(tmp_path / "data/clean.csv", index=False, header=False)
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'seeds = [0, 1]\ncriteria = ["l2", "gennorm:p=learned"]\n'
        'data = ["data/noisy.csv:clean=data/clean.csv,noise=gaussian"]\n'
        "[[models]]\nhidden = [16]\nlatent = 2\n[train]\nepochs = 3\ncheckpoint_every = 0\n"
    )
    plan = load_grid(grid)
    spec = plan.runs[0].spec.data
    assert spec == f"{tmp_path / 'data/noisy.csv'}:clean={tmp_path / 'data/clean.csv'},noise=gaussian"
    assert plan.runs[0].fingerprint is not None and plan.runs[0].fingerprint.count("sha256:") == 2
    out = tmp_path / "study"
    result = run_study(plan, out, threads=1)
    assert result.counts["done"] == 4
    summary = (out / "report.md").read_text()
    assert "Known-answer checks (Gaussian noise):" in summary
    assert "learned gennorm shape p = " in summary
    pd.DataFrame(clean + 0.01).to_csv(tmp_path / "data/clean.csv", index=False, header=False)
    with pytest.raises(ValueError, match=r"data/clean.csv: the file changed since the study"):
        run_study(load_grid(grid), out, resume=True, threads=1, report=False)
