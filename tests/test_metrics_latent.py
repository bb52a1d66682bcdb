"""kNN under exact L_k (fractional k included) and the linear probe, against brute force and toy problems."""

from __future__ import annotations

import numpy as np
import pytest

from lpae.metrics import knn_accuracy, knn_predict, probe_accuracy
from lpae.metrics.latent import majority_vote, seeded_subset, usefulness_metrics


def brute_force_predict(
    reference: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: float, n_neighbors: int
) -> np.ndarray:
    """Plain Python: sort by (exact D_k in float64, index), majority with ties to the nearest."""
    predicted = []
    for q in queries.astype(np.float64):
        distances = [float(np.sum(np.abs(q - p.astype(np.float64)) ** k) ** (1 / k)) for p in reference]
        order = sorted(range(len(reference)), key=lambda i: (distances[i], i))[:n_neighbors]
        votes = [int(labels[i]) for i in order]
        counts = {label: votes.count(label) for label in votes}
        top = max(counts.values())
        predicted.append(next(label for label in votes if counts[label] == top))
    return np.array(predicted)


@pytest.mark.parametrize("k", [0.5, 1.0, 2.0, 0.3, 1.7])
def test_knn_equals_brute_force_on_random_data(k: float) -> None:
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((60, 5))
    labels = rng.integers(0, 3, size=60)
    queries = rng.standard_normal((25, 5))
    for n_neighbors in (1, 4, 5):
        np.testing.assert_array_equal(
            knn_predict(reference, labels, queries, k, n_neighbors),
            brute_force_predict(reference, labels, queries, k, n_neighbors),
        )


def test_fractional_k_changes_the_neighbour_order_and_is_computed_exactly() -> None:
    """q = 0: a = (1, 1) and b = (2.1, 0) swap places between L0.5 and L2 (and L1 too)."""
    reference = np.array([[1.0, 1.0], [2.1, 0.0]])
    labels = np.array([0, 1])
    query = np.zeros((1, 2))
    # D0.5(a) = (1 + 1)^2 = 4 > D0.5(b) = 2.1;  D2(a) = sqrt2 < D2(b) = 2.1;  D1(a) = 2 < 2.1
    assert knn_predict(reference, labels, query, 0.5, 1)[0] == 1
    assert knn_predict(reference, labels, query, 1.0, 1)[0] == 0
    assert knn_predict(reference, labels, query, 2.0, 1)[0] == 0


def test_ties_are_broken_deterministically() -> None:
    # four references at the same L1 distance 1 from the query, labels 3, 1, 1, 3 in row order
    reference = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = np.array([3, 1, 1, 3])
    query = np.zeros((1, 2))
    # distance ties: lower row first, so the single nearest is row 0 (label 3)
    assert knn_predict(reference, labels, query, 1.0, 1)[0] == 3
    # 2 neighbours: rows 0 and 1, one vote each: the tie goes to the nearer, row 0
    assert knn_predict(reference, labels, query, 1.0, 2)[0] == 3
    # 3 neighbours: rows 0, 1, 2: label 1 has the majority
    assert knn_predict(reference, labels, query, 1.0, 3)[0] == 1
    np.testing.assert_array_equal(majority_vote(np.array([[5, 2, 2, 5], [7, 7, 1, 1]])), [5, 7])


def test_separable_toy_problem_is_solved_by_knn_and_probe() -> None:
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 0.0], [0.0, 8.0, 0.0]])
    train_labels = np.repeat(np.arange(3), 40)
    test_labels = np.repeat(np.arange(3), 15)
    train = centres[train_labels] + rng.standard_normal((120, 3))
    test = centres[test_labels] + rng.standard_normal((45, 3))
    for k in (0.5, 1.0, 2.0):
        assert knn_accuracy(train, train_labels, test, test_labels, k) == 1.0
    assert probe_accuracy(train, train_labels, test, test_labels) == 1.0


def test_random_labels_give_chance_accuracy() -> None:
    rng = np.random.default_rng(2)
    train, test = rng.standard_normal((1500, 4)), rng.standard_normal((1000, 4))
    train_labels, test_labels = rng.integers(0, 2, 1500), rng.integers(0, 2, 1000)
    for k in (0.5, 2.0):
        assert knn_accuracy(train, train_labels, test, test_labels, k) == pytest.approx(0.5, abs=0.06)
    assert probe_accuracy(train, train_labels, test, test_labels) == pytest.approx(0.5, abs=0.06)


def test_usefulness_metrics_keys_and_query_subset() -> None:
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((30, 2, 2))
    labels = np.arange(30) % 2
    test = reference[:10] + 0.01
    found = usefulness_metrics(reference, labels, test, labels[:10], np.arange(10), prefix="raw_")
    assert set(found) == {"raw_knn_acc_l0.5", "raw_knn_acc_l1", "raw_knn_acc_l2", "raw_probe_acc"}
    assert found["raw_knn_acc_l1"] == knn_accuracy(
        reference.reshape(30, -1), labels, test.reshape(10, -1), labels[:10], 1.0
    )
    assert usefulness_metrics(reference, np.zeros(30), test, labels[:10], np.arange(10)) == {}


def test_seeded_subset_is_sorted_deterministic_and_capped() -> None:
    subset = seeded_subset(10_000, 50)
    np.testing.assert_array_equal(subset, seeded_subset(10_000, 50))
    assert len(np.unique(subset)) == 50 and np.all(np.diff(subset) > 0)
    np.testing.assert_array_equal(seeded_subset(7, 50), np.arange(7))


def test_bad_knn_input_is_refused() -> None:
    with pytest.raises(ValueError, match="features"):
        knn_predict(np.zeros((3, 2)), np.zeros(3), np.zeros((1, 4)), 1.0)
    with pytest.raises(ValueError, match="labels"):
        knn_predict(np.zeros((3, 2)), np.zeros(2), np.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="k must be > 0"):
        knn_predict(np.zeros((3, 2)), np.zeros(3), np.zeros((1, 2)), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        knn_predict(np.full((3, 2), np.nan), np.zeros(3), np.zeros((1, 2)), 1.0)
