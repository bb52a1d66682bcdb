"""advise: the decision rule on residuals of known shape, its parts with known answers, the three
synthetic noise families end to end (library and CLI), and bad input."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from lpae.advise import (
    LP_RANGE,
    advise,
    decide,
    feature_scale_gap,
    fit_residuals,
    outlier_share,
    recommendation,
    strength,
    subset_note,
)
from lpae.cli import app
from lpae.criteria import normalize
from lpae.data import Dataset, Quantization
from lpae.metrics.likelihood import per_feature_scaled

runner = CliRunner()
QUICK = {"epochs": 30}


def synthetic(noise: str, seed: int = 0) -> str:
    return f"synthetic:n=1200,dim=32,noise={noise},scale=0.3,seed={seed}"


def residuals(kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (300, 32)
    if kind == "gaussian":
        return stats.norm.rvs(size=shape, random_state=rng)
    if kind == "laplace":
        return stats.laplace.rvs(size=shape, random_state=rng)
    if kind == "t2":
        return stats.t.rvs(2, size=shape, random_state=rng)
    if kind == "outlier_rows":
        r = stats.norm.rvs(size=shape, random_state=rng)
        r[:15] *= 30  # 5 % gross outlier rows
        return r
    return stats.gennorm.rvs(float(kind), size=shape, random_state=rng)  # a shape p


@pytest.mark.parametrize(
    ("kind", "family", "recommended"),
    [
        ("gaussian", "L2", "lp:2"),
        ("laplace", "L1", "lp:1"),
        ("t2", "robust", "student_t:df=learned"),
        ("outlier_rows", "robust", "student_t:df=learned"),
        ("0.5", "Lp", "lp:0.5"),
        ("4", "Lp", "lp:4"),
    ],
)
def test_decision_on_residuals_of_known_shape(kind: str, family: str, recommended: str) -> None:
    found = fit_residuals(residuals(kind))
    decided, words, reasons = decide(found)
    assert decided == family
    assert recommendation(decided, found["p"])[0] == recommended
    assert words == "strong"
    assert reasons[-1].startswith("Verdict:")


def test_residual_shapes_match_scipy_fits() -> None:
    r = residuals("laplace")
    found = fit_residuals(r)
    sample = r.ravel()
    scaled = per_feature_scaled(r).ravel()  # each feature by its own scale, as lpae eval fits them
    assert found["p"] == pytest.approx(stats.gennorm.fit(scaled, floc=0)[0], rel=1e-3)
    assert found["df"] == pytest.approx(stats.t.fit(scaled, floc=0)[0], rel=1e-3)
    # the per-row NLLs are the family's densities at the fitted scales
    b = found["fits"]["laplace"].scale
    assert b == pytest.approx(np.mean(np.abs(sample)))
    np.testing.assert_allclose(found["rows"]["laplace"], -stats.laplace.logpdf(r, scale=b).mean(axis=1))


def test_on_quantized_data_the_families_score_bins_and_a_spike_does_not_decide() -> None:
    """Integer data reconstructed exactly in 70% of the elements, off by whole steps otherwise:
    the continuous fits read a spike (p far below 0.8, a scale near 0, a negative NLL); scored by
    bin probabilities every NLL is >= 0 and the scale no longer collapses."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 17, size=(400, 16)).astype(np.float64)
    off = rng.integers(-2, 3, size=x.shape) * (rng.random(x.shape) > 0.7)
    r = off + rng.normal(size=x.shape) * np.where(off == 0, 1e-6, 0.2)  # a spike at 0
    continuous = fit_residuals(r)
    assert continuous["p"] < LP_RANGE[0] and continuous["fits"]["gennorm"].nll < 0  # the trap
    grid = Quantization.uniform((16,), 1.0, 0.0, 16.0)
    binned = fit_residuals(r, grid.bin_offsets(x))
    assert binned["binned"]
    assert all(fit.nll >= 0 for fit in binned["fits"].values())
    assert binned["fits"]["gennorm"].scale > 1e-3  # no collapse (the continuous fit: 4e-18)
    assert binned["p"] == binned["fits"]["gennorm"].shape  # p is the discrete fit's
    assert "quantized data: likelihoods of the bins" in decide(binned)[2][0]


def test_outlier_share_counts_gross_rows() -> None:
    assert outlier_share(residuals("gaussian")) == 0.0
    assert outlier_share(residuals("laplace")) == 0.0
    assert outlier_share(residuals("outlier_rows")) == pytest.approx(0.05)


def test_feature_scale_gap_known_answers() -> None:
    rng = np.random.default_rng(0)
    same = rng.standard_normal((20000, 4))
    assert feature_scale_gap(same, 2.0) == pytest.approx(0.0, abs=2e-3)
    # half the features with scale 1, half with 4 (Gaussian, p = 2): alpha_j = sqrt(2) s_j, so
    # the gain is 0.5 log(mean s_j^2) - mean log s_j = 0.5 log(8.5) - 0.5 log 4
    mixed = same * np.array([1.0, 1.0, 4.0, 4.0])
    expected = 0.5 * math.log(8.5) - 0.5 * math.log(4.0)
    assert feature_scale_gap(mixed, 2.0) == pytest.approx(expected, rel=1e-2)


def test_strength_words() -> None:
    assert strength(0.001, 0.0) == "no real difference"
    assert strength(0.02, 0.02) == "no real difference"  # within two standard errors
    assert strength(0.005, 0.0001) == "weak"
    assert strength(0.02, 0.001) == "moderate"
    assert strength(0.3, 0.01) == "strong"


REQUIRED_KEYS = {
    "recommended",
    "alternatives",
    "reasons",
    "residual_gennorm_p",
    "residual_t_df",
    "outlier_fraction",
}


@pytest.mark.slow
def test_gaussian_noise_leads_to_l2_through_the_cli(tmp_path: Path) -> None:
    report, grid = tmp_path / "advice.json", tmp_path / "grid.toml"
    args = ["advise", "--data", synthetic("gaussian"), "--epochs", "30", "--json", str(report)]
    result = runner.invoke(app, [*args, "--grid", str(grid)])
    assert result.exit_code == 0, result.output
    assert "recommended: lp:p=2" in result.output and "lpae train --data" in result.output
    advice = json.loads(report.read_text())
    assert set(advice) >= REQUIRED_KEYS
    assert advice["family"] == "L2" and advice["recommended"] == normalize("lp:2")
    assert advice["residual_gennorm_p"] > 1.6
    assert all(isinstance(reason, str) for reason in advice["reasons"])
    assert advice["commands"]["train"].startswith("lpae train --data synthetic:n=1200,dim=32,noise=gaussian")
    assert f"--loss {advice['recommended']}" in advice["commands"]["train"]
    assert advice["commands"]["study"] == f"lpae study {grid} --out studies/advise"
    table = tomllib.loads(grid.read_text())
    assert table["criteria"][0] == advice["recommended"] and table["data"] == [advice["data"]]
    assert {"rel_contrast", "knn_agreement"} <= set(advice["contrast"]["latent"])
    assert advice["note"] is None and "advise: quick models" not in result.output  # nothing subsampled
    assert advice["rows"]["train"][0] == advice["rows"]["train"][1]


@pytest.mark.slow
def test_laplace_noise_leads_to_l1() -> None:
    advice = advise(synthetic("laplace"), **QUICK)
    assert advice["family"] == "L1" and advice["recommended"] == normalize("lp:1")
    assert advice["residual_gennorm_p"] < 1.5
    assert normalize("laplace") in advice["alternatives"]


@pytest.mark.slow
def test_heavy_tailed_noise_leads_to_a_robust_criterion() -> None:
    advice = advise(synthetic("student_t,df=2"), **QUICK)
    assert advice["family"] == "robust" and advice["recommended"] == normalize("student_t:df=learned")
    assert advice["residual_t_df"] < 5
    json.dumps(advice, allow_nan=False)  # strict JSON


def test_bad_input_in_the_library() -> None:
    with pytest.raises(ValueError, match="unknown data set 'nosuch'"):
        advise("nosuch")
    with pytest.raises(ValueError, match="has 10 samples; it needs at least 30"):
        advise("synthetic:n=10")
    with pytest.raises(TypeError, match="data must be a data set spec"):
        advise(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        advise("digits", seed=-1)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        advise("digits", epochs=0)
    x = np.ones((40, 3), dtype=np.float32)
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        advise(Dataset("mine", x))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "nosuch"], "unknown data set 'nosuch'"),
        (["--data", "synthetic:n=10"], "it needs at least 30"),
        (["--data", "digits", "--json", "/no/such/folder/a.json"], "--json /no/such/folder/a.json: folder"),
        (["--data", "digits", "--epochs", "0"], "epochs must be a positive integer"),
        (["--data", "digits", "--max-train", "ten"], "--max-train must be a number of rows or all"),
        (["--data", "digits", "--max-train", "5"], "max_train must be an integer >= 30"),
    ],
)
def test_bad_input_in_the_cli_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["advise", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lpae: error:") and message in lines[0], lines


def test_subset_note_says_what_was_subsampled() -> None:
    assert subset_note({"train": [900, 900], "heldout": [200, 200], "contrast": [200, 200]}) is None
    note = subset_note({"train": [10_000, 170_000], "heldout": [15_625, 30_000], "contrast": [1_000, 15_625]})
    assert note is not None and note.startswith("advise: quick models trained on a seeded 10,000 of 170,000")
    assert "--max-train N or all" in note and "15,625 of 30,000 held-out rows" in note
    assert "contrast on 1,000 of them" in note


def test_max_train_caps_the_training_rows_and_the_cli_default_matches() -> None:
    from lpae.advise import MAX_TRAIN
    from lpae.cli import advise as advise_cli

    assert advise_cli.MAX_TRAIN == MAX_TRAIN
    advice = advise("synthetic:n=300,dim=8", epochs=1, max_train=100)
    used, available = advice["rows"]["train"]
    assert used == 100 and available > 100
    assert f"a seeded 100 of {available} training rows" in advice["note"]
    every = advise("synthetic:n=300,dim=8", epochs=1, max_train=None)
    assert every["rows"]["train"] == [available, available]
