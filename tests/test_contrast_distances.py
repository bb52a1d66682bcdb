"""Exact L_k distances and neighbour ranks against brute-force NumPy references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lpae.contrast import distances, neighbours
from lpae.contrast.distances import lk_distances, parse_k_values, power_sums
from lpae.contrast.neighbours import nearest_by_key, same_class_counts, scan

K_VALUES = [0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 4.5, math.inf]
BACKENDS = ["numba", "torch"]


def brute_force(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """D_k in float64 over the full (Q, N, d) broadcast: fine for tiny inputs only."""
    diff = np.abs(a[:, None, :].astype(np.float64) - b[None, :, :].astype(np.float64))
    if math.isinf(k):
        return diff.max(axis=-1)
    return (diff**k).sum(axis=-1) ** (1 / k)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", K_VALUES)
def test_distances_match_brute_force_float32(k: float, backend: str) -> None:
    rng = np.random.default_rng(0)
    # Sizes that are not multiples of the kernel's row block (8) or point tile (256).
    a = rng.standard_normal((13, 37)).astype(np.float32)
    b = (3 * rng.standard_normal((301, 37))).astype(np.float32)
    got = lk_distances(a, b, k, backend=backend)
    assert got.shape == (13, 301) and got.dtype == np.float64
    # float32 differences and float32 sqrt / pow: a few float32 roundings per term at most.
    np.testing.assert_allclose(got, brute_force(a, b, k), rtol=2e-6, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", K_VALUES)
def test_distances_match_brute_force_float64(k: float, backend: str) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random((5, 20)), rng.random((9, 20))
    np.testing.assert_allclose(lk_distances(a, b, k, backend=backend), brute_force(a, b, k), rtol=1e-12)


@pytest.mark.parametrize("k", [0.5, 1.0, 2.0, math.inf, 0.7])
def test_power_sums_are_symmetric_bit_for_bit_with_zero_diagonal(k: float) -> None:
    x = np.random.default_rng(2).standard_normal((40, 11)).astype(np.float32)
    sums = power_sums(x, x, k)
    assert np.array_equal(sums, sums.T)
    assert np.all(np.diag(sums) == 0)


def test_one_feature_and_one_query() -> None:
    a = np.array([[0.5]], np.float32)
    b = np.array([[0.0], [2.5], [-1.5]], np.float32)
    for k in (0.5, 1.0, 2.0, 3.0, math.inf):
        np.testing.assert_allclose(lk_distances(a, b, k)[0], [0.5, 2.0, 2.0], rtol=1e-7)


def test_torch_fallback_chunks_give_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random((17, 6)), rng.random((23, 6))
    whole = power_sums(a, b, 0.5, backend="torch")
    monkeypatch.setattr(distances, "CHUNK_ELEMENTS", 50)  # forces many small blocks
    np.testing.assert_allclose(power_sums(a, b, 0.5, backend="torch"), whole, rtol=1e-15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "must be > 0"),
        ("-1", "must be > 0"),
        ("0.5,abc", "'abc' is not a number"),
        ("", "at least one value"),
        ("nan", "must be > 0"),
        ("1,1.0", "given twice"),
    ],
)
def test_bad_k_values(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_k_values(text)


def test_k_values_parse_inf() -> None:
    assert parse_k_values("0.5, 1,2,inf") == (0.5, 1.0, 2.0, math.inf)


def test_bad_inputs_raise_value_errors() -> None:
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="k must be > 0"):
        power_sums(x, x, 0.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        power_sums(np.array([[np.nan, 0.0]]), x, 1.0)
    with pytest.raises(ValueError, match="2-d array"):
        power_sums(np.zeros(3), x, 1.0)
    with pytest.raises(ValueError, match="features"):
        power_sums(np.zeros((2, 3)), x, 1.0)
    with pytest.raises(ValueError, match="unknown distance backend"):
        power_sums(x, x, 1.0, backend="gpu")


# --- neighbour ranks -------------------------------------------------------------------------


def test_nearest_breaks_ties_by_index() -> None:
    keys = np.array([[1.0, 0.0, 1.0, 0.0, 2.0, 1.0], [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    assert nearest_by_key(keys, 3).tolist() == [[1, 3, 0], [5, 4, 3]]
    assert nearest_by_key(keys, 0).shape == (2, 0)


def reference_scan(x: np.ndarray, k: float, n_neighbors: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dmin, Dmax and neighbours from the full distance matrix, sorted by (distance, index).

    For k = 0.5 the terms are float32 square roots, as the kernel documents; on small integer
    data their float64 sums are exact, so exact distance ties stay exact ties here too.
    """
    if k == 0.5:
        terms = np.sqrt(np.abs(x[:, None, :] - x[None, :, :])).astype(np.float64)  # float32 sqrt
        dist = terms.sum(axis=-1) ** 2
    else:
        dist = brute_force(x, x, k)
    others = [np.delete(np.arange(len(x)), i) for i in range(len(x))]
    nearest = np.array([row[np.lexsort((row, dist[i, row]))][:n_neighbors] for i, row in enumerate(others)])
    dmin = np.array([dist[i, row].min() for i, row in enumerate(others)])
    dmax = np.array([dist[i, row].max() for i, row in enumerate(others)])
    return dmin, dmax, nearest


@pytest.mark.parametrize("k", [0.5, 1.0, 2.0, math.inf])
def test_scan_matches_brute_force_ranks_including_ties(k: float, monkeypatch: pytest.MonkeyPatch) -> None:
    # Integer-valued points make many exact distance ties, so tie-breaking matters.
    x = np.random.default_rng(4).integers(0, 3, size=(60, 4)).astype(np.float32)
    monkeypatch.setattr(neighbours, "BLOCK_BYTES", 8 * 60 * 7)  # blocks of 7 queries
    result = scan(x, k, n_neighbors=5)
    dmin, dmax, nearest = reference_scan(x, k, 5)
    np.testing.assert_allclose(result.dmin, dmin, rtol=1e-12)
    np.testing.assert_allclose(result.dmax, dmax, rtol=1e-12)
    assert np.array_equal(result.neighbours, nearest)


def test_duplicates_have_zero_dmin_and_infinite_relative_contrast() -> None:
    x = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [3.0, 0.0]], np.float32)
    result = scan(x, 1.0, n_neighbors=1)
    assert result.dmin.tolist() == [0.0, 0.0, 2.0, 3.0]
    assert result.neighbours[:, 0].tolist() == [1, 0, 0, 0]  # the duplicate; ties go to the lowest index
    rc = result.rel_contrast
    assert np.isinf(rc[:2]).all() and rc[2] == pytest.approx((3.0 - 2.0) / 2.0)


def test_class_agreement_known_answer() -> None:
    """Points on a line with hand-counted same-class neighbours (ties at distance 1 go to the lower index)."""
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]], np.float32)
    y = np.array([0, 0, 1, 1, 1, 0])
    one = same_class_counts(scan(x, 2.0, n_neighbors=1).neighbours, y)
    assert one.tolist() == [1, 1, 0, 1, 1, 0]  # 4 of 6
    two = same_class_counts(scan(x, 0.5, n_neighbors=2).neighbours, y)
    assert two.tolist() == [1, 1, 0, 1, 1, 0]  # 4 of 12


def test_scan_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="at least 2 points"):
        scan(np.zeros((1, 3)), 1.0)
    with pytest.raises(ValueError, match="neighbors must be between 0 and 2"):
        scan(np.zeros((3, 3)), 1.0, n_neighbors=3)


@pytest.mark.parametrize("k", [0.3, 1.0, 2.0, math.inf])
def test_relative_contrast_from_power_sums(k: float) -> None:
    from lpae.contrast.distances import relative_contrast, to_distance

    smin, smax = np.array([2.0, 0.0, 5.0]), np.array([7.0, 3.0, 5.0])
    dmin, dmax = to_distance(smin, k), to_distance(smax, k)
    expected = [(dmax[0] - dmin[0]) / dmin[0], math.inf, 0.0]
    np.testing.assert_allclose(relative_contrast(smin, smax, k), expected, rtol=1e-13)
