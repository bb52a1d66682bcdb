"""Synthetic mode: the known answers of Aggarwal, Hinneburg & Keim (2001) and the report's shape."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lpae.contrast import synthetic
from lpae.contrast.synthetic import synthetic_contrast

C = 2 / math.sqrt(math.pi)


def test_absolute_contrast_grows_like_d_to_the_one_over_k_minus_half() -> None:
    """Uniform data, origin query: the fitted exponent over d in [10, 1000] is 1/k - 1/2 within 0.1."""
    report = synthetic_contrast(
        "uniform", dims=(10, 20, 50, 100, 200, 500, 1000), ks=(1.0, 2.0, 3.0), n_points=100, trials=10, seed=0
    )
    for fit in report["fits"]:
        assert fit["dims"] == [10, 20, 50, 100, 200, 500, 1000]
        assert fit["theory"] == pytest.approx(1 / fit["k"] - 0.5)
        # Over 30 seeds the largest miss was 0.025: 0.1 is the tolerance, not a loosened one.
        assert abs(fit["exponent"] - fit["theory"]) < 0.1, fit


def test_relative_contrast_constant_for_two_points() -> None:
    """N = 2, origin query, d = 1000: sqrt(d) E[RC_k] is C / sqrt(2k + 1), C = 2 / sqrt(pi), within 5 %.

    With 20,000 trials the standard error is about 0.55 % of the limit; the remaining gap
    (1-2 %, positive, since E[1 / Dmin] > 1 / E[Dmin]) is the finite-d correction.
    """
    d = 1000
    report = synthetic_contrast("uniform", dims=(d,), ks=(0.5, 1.0, 2.0), n_points=2, trials=20_000, seed=0)
    for row in report["rows"]:
        limit = C / math.sqrt(2 * row["k"] + 1)
        measured = math.sqrt(d) * row["rel_contrast"]
        assert measured == pytest.approx(limit, rel=0.05), row
        assert math.sqrt(d) * row["rel_contrast_se"] < 0.01 * limit


def test_report_structure_and_l2_below_l1() -> None:
    report = synthetic_contrast(
        "normal", dims=(2, 50), ks=(0.5, 1.0, 2.0, math.inf), n_points=30, trials=4, query="point", seed=3
    )
    assert report["mode"] == "synthetic" and report["k"] == [0.5, 1.0, 2.0, "inf"]
    assert len(report["rows"]) == 2 * 4
    row = report["rows"][0]
    assert set(row) >= {"d", "k", "n_points", "trials", "abs_contrast", "abs_contrast_se"}
    assert set(row) >= {"rel_contrast", "rel_contrast_se"}
    for row in report["rows"]:
        assert row["abs_contrast"] > 0 and row["rel_contrast"] > 0
        assert row["dmax_mean"] > row["dmin_mean"] > 0
    assert [r["d"] for r in report["l2_below_l1"]] == [2, 50]
    assert all(0 <= r["fraction"] <= 1 and r["trials"] == 4 for r in report["l2_below_l1"])
    fits = {f["k"]: f for f in report["fits"]}
    assert fits["inf"]["theory"] is None and fits[2.0]["theory"] == 0.0
    assert fits[1.0]["exponent"] is None  # only d = 50 is >= fit_from
    assert "l2_below_l1" not in synthetic_contrast("uniform", dims=(5,), ks=(1.0, 3.0), n_points=5, trials=2)


def test_contrast_from_first_principles_for_one_trial() -> None:
    """Recompute one trial's numbers from the documented random streams with plain NumPy."""
    seed, d, n = 7, 6, 9
    report = synthetic_contrast(
        "uniform", dims=(d,), ks=(0.5, math.inf), n_points=n, trials=1, query="point", seed=seed
    )
    points = np.random.default_rng([seed, d, 0]).random((1, d, n), dtype=np.float32)[0].T  # (N, d)
    query = np.random.default_rng([seed, d, 1]).random((1, d), dtype=np.float32)[0]
    diff = np.abs(points - query).astype(np.float64)
    for k, dist in ((0.5, (np.sqrt(diff).sum(1)) ** 2), ("inf", diff.max(1))):
        row = next(r for r in report["rows"] if r["k"] == k)
        assert row["abs_contrast"] == pytest.approx(dist.max() - dist.min(), rel=1e-6)
        assert row["rel_contrast"] == pytest.approx((dist.max() - dist.min()) / dist.min(), rel=1e-6)
        assert row["abs_contrast_se"] is None  # a single trial has no standard error


def test_results_do_not_depend_on_chunking_or_the_dims_list(monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = {"ks": (0.3, 1.0), "n_points": 40, "trials": 6, "query": "point", "seed": 1}
    whole = synthetic_contrast("normal", dims=(3, 8), **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(synthetic, "CHUNK_VALUES", 100)  # one trial per chunk
    chunked = synthetic_contrast("normal", dims=(8,), **kwargs)  # type: ignore[arg-type]
    assert [r for r in whole["rows"] if r["d"] == 8] == chunked["rows"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dims": ()}, "at least one dimension"),
        ({"dims": (0, 5)}, "positive integers"),
        ({"dims": (5, 5)}, "given twice"),
        ({"n_points": 1}, "n-points must be at least 2"),
        ({"trials": 0}, "trials must be at least 1"),
        ({"distribution": "cauchy"}, "unknown distribution 'cauchy'"),
        ({"query": "mean"}, "unknown query 'mean'"),
        ({"ks": (0.0,)}, "k must be > 0"),
        ({"ks": ()}, "at least one value"),
    ],
)
def test_bad_settings(kwargs: dict, message: str) -> None:
    settings = {"dims": (5,), "ks": (1.0,), "n_points": 5, "trials": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        synthetic_contrast(**settings)


def test_relative_contrast_stays_finite_where_distances_overflow() -> None:
    """k = 0.01 at d = 2000: D = S^100 overflows float64, the ratio Dmax / Dmin does not."""
    report = synthetic_contrast("uniform", dims=(2000,), ks=(0.01, 1.0), n_points=5, trials=3, seed=0)
    tiny, one = report["rows"]
    assert math.isinf(tiny["dmax_mean"])
    assert math.isfinite(tiny["rel_contrast"]) and tiny["rel_contrast"] > one["rel_contrast"] > 0
