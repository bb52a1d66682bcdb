"""Data and latent modes: relative contrast per query, class agreement with intervals, comparisons."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lpae.contrast import analyse, data_contrast, latent_contrast
from lpae.contrast.agreement import bootstrap_mean_interval, paired_comparison
from lpae.contrast.data import Features

LINE_X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]], np.float32)
LINE_Y = np.array([0, 0, 1, 1, 1, 0])


def test_analyse_known_answer_on_a_line() -> None:
    analysis = analyse(Features("line", LINE_X, LINE_Y), (1.0, math.inf), n_neighbors=2, n_bootstrap=200)
    report = analysis.report
    assert [a["count"] for a in report["agreement"]] == [4, 4]  # counted by hand
    assert [a["total"] for a in report["agreement"]] == [12, 12]
    assert report["agreement"][0]["fraction"] == pytest.approx(4 / 12)
    row = report["rows"][0]
    # Per query (Dmax - Dmin) / Dmin: 11, 10, 9, 9, 10, 11.
    assert row["rel_contrast"] == pytest.approx(10.0)
    assert row["rel_contrast_median"] == pytest.approx(10.0)
    assert row["rel_contrast_q25"] == pytest.approx(9.25) and row["rel_contrast_q75"] == pytest.approx(10.75)
    assert row["n_zero_dmin"] == 0
    only = report["comparisons"]
    assert len(only) == 1 and only[0]["difference"] == 0 and only[0]["p_value"] == 1.0
    assert not only[0]["significant"] and "not significant" in only[0]["summary"]


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 2, 200).astype(float)
    large = rng.integers(0, 2, 20_000).astype(float)
    low_s, high_s = bootstrap_mean_interval(small, 1000, seed=1)
    low_l, high_l = bootstrap_mean_interval(large, 1000, seed=1)
    assert low_s < small.mean() < high_s and low_l < large.mean() < high_l
    # Width of a 95 % interval for a proportion near 1/2: about 2 * 1.96 * 0.5 / sqrt(n).
    assert high_l - low_l == pytest.approx(3.92 * 0.5 / math.sqrt(20_000), rel=0.15)
    assert bootstrap_mean_interval(np.ones(50), 1000, seed=1) == (1.0, 1.0)


def test_paired_comparison_detects_a_real_difference() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(5, 11, 2000)
    b = np.clip(a - rng.integers(0, 3, 2000), 0, 10)  # b never above a, often below
    result = paired_comparison("A", a, "B", b, 10, 500, seed=0)
    assert result["significant"] and result["difference"] > 0 and result["ci_low"] > 0
    assert result["p_value"] < 1e-6 and "A above B: significant" in result["summary"]


def test_unlabelled_data_needs_neighbors_zero() -> None:
    features = Features("plain", LINE_X, None)
    with pytest.raises(ValueError, match="has no labels.*--neighbors 0"):
        analyse(features, (1.0,), n_neighbors=3)
    report = analyse(features, (1.0,), n_neighbors=0).report
    assert "agreement" not in report and report["rows"][0]["n_points"] == 6


def test_data_contrast_on_digits_subset() -> None:
    report = data_contrast("digits", (0.5, 1.0, 2.0), n_neighbors=5, n_bootstrap=200, max_points=300, seed=0)
    assert report["mode"] == "data" and report["n_points"] == 300 and report["n_features"] == 64
    assert report["k"] == [0.5, 1.0, 2.0]
    for row in report["agreement"]:
        assert 0.5 < row["fraction"] <= 1 and row["ci_low"] <= row["fraction"] <= row["ci_high"]
        assert row["count"] == round(row["fraction"] * row["total"])
    assert len(report["comparisons"]) == 3
    assert {(c["k_a"], c["k_b"]) for c in report["comparisons"]} == {(0.5, 1.0), (0.5, 2.0), (1.0, 2.0)}


def test_data_contrast_rejects_unlabelled_set_and_bad_preprocess() -> None:
    with pytest.raises(ValueError, match="has no labels"):
        data_contrast("uniform:n=50,dim=5", (1.0,))
    with pytest.raises(ValueError, match="unknown preprocessing"):
        data_contrast("digits", (1.0,), preprocess="zscore", max_points=20)


def test_latent_mode_on_a_trained_run(digits_run: Path) -> None:
    report = latent_contrast(digits_run, (1.0, 2.0), n_neighbors=5, n_bootstrap=200)
    assert report["mode"] == "latent"
    latent, raw = report["latent"], report["raw"]
    assert latent["n_features"] == 8 and raw["n_features"] == 64
    assert latent["n_points"] == raw["n_points"] > 100  # the test split
    assert [r["k"] for r in report["latent_vs_raw"]] == [1.0, 2.0]
    for comparison in report["latent_vs_raw"]:
        fraction_latent = next(a for a in latent["agreement"] if a["k"] == comparison["k"])["fraction"]
        assert comparison["fraction_a"] == pytest.approx(fraction_latent)


@pytest.mark.parametrize("form", ["tensor", "tuple", "distribution"])
def test_encode_takes_the_posterior_mean(form: str) -> None:
    import torch

    from lpae.contrast.latent import encode

    class Encoder(torch.nn.Module):
        def encode(self, x: torch.Tensor) -> object:
            mean = 2 * x[:, :2]
            if form == "tuple":
                return mean, torch.zeros_like(mean)
            if form == "distribution":
                return torch.distributions.Normal(mean, torch.ones_like(mean))
            return mean

    x = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    np.testing.assert_array_equal(encode(Encoder(), x), 2 * x[:, :2].numpy())


def test_data_mode_analyses_a_bounded_subset_by_default_and_estimates_the_rest() -> None:
    from lpae.cli.contrast import parse_max_points, subset_note
    from lpae.contrast.data import DEFAULT_MAX_POINTS

    assert parse_max_points(None) == DEFAULT_MAX_POINTS and parse_max_points("all") is None
    assert parse_max_points("300") == 300
    with pytest.raises(ValueError, match="--max-points must be a number of rows or all"):
        parse_max_points("many")
    sub = data_contrast("digits", (1.0,), n_neighbors=0, n_bootstrap=100, max_points=300, seed=0)
    assert sub["n_points"] == 300 and sub["n_rows"] == 1797
    assert sub["full_seconds_estimate"] == pytest.approx(sub["seconds"] * (1797 / 300) ** 2)
    note = subset_note(sub)
    assert note is not None and "subset of 300 of 1,797 rows" in note and "--max-points all" in note
    every = data_contrast("digits", (1.0,), n_neighbors=0, n_bootstrap=100, max_points=None, seed=0)
    assert every["n_points"] == 1797 and "full_seconds_estimate" not in every and subset_note(every) is None
