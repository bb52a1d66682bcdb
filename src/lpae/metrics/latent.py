"""Latent usefulness for labelled data: k-nearest-neighbour accuracy under L_k, and a linear probe.

kNN (``knn_acc_l{k}``, k = 0.5, 1, 2): each query's N_NEIGHBORS = 5 nearest reference points under

    D_k(q, p) = (sum_i |q_i - p_i|^k)^(1/k)      (fractional for k = 0.5; Aggarwal et al. 2001)

computed exactly by lpae.contrast.distances (compiled kernel, float64 sums; neighbours ranked by
the power sum S_k = D_k^k, a monotone function of D_k, so no root is taken). Ties in distance go
to the lower reference index (lpae.contrast.neighbours.nearest_by_key); the prediction is the
majority label of the 5, and a tie between labels goes to the label whose member comes first in
neighbour order (the nearest). Accuracy = fraction of queries predicted right.

Rows: the references are a seeded subsample of at most KNN_REFERENCE_ROWS training rows, the
queries a seeded subsample of at most KNN_QUERY_ROWS test rows. Exact L_0.5 distances in 784
dimensions cost about 1 ns per query-reference-feature term on these 2-core machines, so the
caps keep ``lpae eval`` on MNIST within its time budget (bench/eval.py), and they keep the kNN
cost constant in the rows (every row against every other would be quadratic); with fewer rows
than the caps every row is used. ``lpae eval --knn-rows`` (lpae.metrics.evaluate, ``knn_rows``)
sets other caps, or none. The standard error of an accuracy a over Q queries is about
sqrt(a (1 - a) / Q), at most 0.016 at Q = 1000.

Probe (``probe_acc``): StandardScaler then multinomial logistic regression (lbfgs, C = 1, at most
PROBE_MAX_ITER iterations, ConvergenceWarning silenced: a fixed-budget measurement; one BLAS
thread), fitted on the kNN reference rows and scored on every test row.

The same rows serve the latent codes (z = model.encode(x), the posterior mean for a VAE) and the
raw features (the preprocessed rows, flattened; keys ``raw_knn_acc_l{k}``, ``raw_probe_acc``), so
latent and raw accuracies are paired: same references, same queries.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from lpae.contrast.distances import check_features, chunks, power_sums_t, transpose_points
from lpae.contrast.neighbours import nearest_by_key
from lpae.metrics.registry import LATENT, Metric, declare

KNN_ORDERS = (0.5, 1.0, 2.0)
N_NEIGHBORS = 5
KNN_REFERENCE_ROWS = 5000
KNN_QUERY_ROWS = 1000
PROBE_MAX_ITER = 300
BLOCK_BYTES = 32 << 20  # one (block, N) float64 array of power sums
SUBSET_SEED = 0

declare(
    Metric(
        "knn_acc_l0.5", "latent kNN accuracy, L0.5 distance", better="higher", groups=(LATENT,), fraction=True
    ),
    Metric(
        "knn_acc_l1", "latent kNN accuracy, L1 distance", better="higher", groups=(LATENT,), fraction=True
    ),
    Metric(
        "knn_acc_l2", "latent kNN accuracy, L2 distance", better="higher", groups=(LATENT,), fraction=True
    ),
    Metric("probe_acc", "latent linear-probe accuracy", better="higher", groups=(LATENT,), fraction=True),
    Metric("raw_knn_acc_l0.5", "raw-feature kNN accuracy, L0.5 distance", better="higher", fraction=True),
    Metric("raw_knn_acc_l1", "raw-feature kNN accuracy, L1 distance", better="higher", fraction=True),
    Metric("raw_knn_acc_l2", "raw-feature kNN accuracy, L2 distance", better="higher", fraction=True),
    Metric("raw_probe_acc", "raw-feature linear-probe accuracy", better="higher", fraction=True),
)


def seeded_subset(n_rows: int, size: int | None, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted positions of at most ``size`` of range(n_rows) (None: every row), chosen without replacement."""
    if size is None or n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=size, replace=False))


def majority_vote(neighbour_labels: np.ndarray) -> np.ndarray:
    """(Q, L) labels in neighbour order -> (Q,) majority label; ties go to the earliest label."""
    n_queries, n_neighbors = neighbour_labels.shape
    classes, flat_codes = np.unique(neighbour_labels, return_inverse=True)
    codes = flat_codes.reshape(n_queries, n_neighbors)  # (Q, L) in 0..C-1
    rows = np.repeat(np.arange(n_queries), n_neighbors)
    counts = np.zeros((n_queries, len(classes)), np.int64)  # (Q, C)
    np.add.at(counts, (rows, codes.ravel()), 1)
    top = counts.max(axis=1, keepdims=True)  # (Q, 1)
    is_top = np.take_along_axis(counts, codes, axis=1) == top  # (Q, L)
    first = is_top.argmax(axis=1)  # earliest neighbour whose label has the top count
    return neighbour_labels[np.arange(n_queries), first]


def knn_predict(
    reference: np.ndarray,
    reference_labels: np.ndarray,
    queries: np.ndarray,
    k: float,
    n_neighbors: int = N_NEIGHBORS,
) -> np.ndarray:
    """Predicted labels (Q,) of queries (Q, d) by the n_neighbors nearest references (N, d) under L_k."""
    reference = check_features(reference, "kNN reference rows")
    queries = check_features(queries, "kNN queries")
    if reference.shape[1] != queries.shape[1]:
        raise ValueError(f"kNN: references have {reference.shape[1]} features, queries {queries.shape[1]}")
    if len(reference) != len(reference_labels):
        raise ValueError(f"kNN: {len(reference_labels)} labels for {len(reference)} reference rows")
    if n_neighbors < 1:
        raise ValueError(f"kNN needs at least 1 neighbour, got {n_neighbors}")
    dtype = np.result_type(reference.dtype, queries.dtype)
    queries = queries.astype(dtype, copy=False)
    points_t = transpose_points(reference, dtype)  # (d, N)
    n_neighbors = min(n_neighbors, len(reference))
    labels = np.asarray(reference_labels)
    predicted = np.empty(len(queries), dtype=labels.dtype)
    block = max(1, BLOCK_BYTES // (8 * len(reference)))
    for start, stop in chunks(len(queries), block):
        keys = power_sums_t(np.ascontiguousarray(queries[start:stop]), points_t, k)  # (B, N)
        neighbours = nearest_by_key(keys, n_neighbors)  # (B, L) ordered by (distance, index)
        predicted[start:stop] = majority_vote(labels[neighbours])
    return predicted


def knn_accuracy(
    reference: np.ndarray,
    reference_labels: np.ndarray,
    queries: np.ndarray,
    query_labels: np.ndarray,
    k: float,
    n_neighbors: int = N_NEIGHBORS,
) -> float:
    predicted = knn_predict(reference, reference_labels, queries, k, n_neighbors)
    return float(np.mean(predicted == np.asarray(query_labels)))


def probe_accuracy(
    train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray
) -> float:
    """Test accuracy of a standardised logistic regression fitted on (train, train_labels)."""
    if len(np.unique(train_labels)) < 2:
        raise ValueError("the linear probe needs at least 2 classes among its training rows")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=PROBE_MAX_ITER))
    # One BLAS thread: the probe's products are small, and a second OpenBLAS thread that has to
    # wait for a busy core made the raw MNIST probe 10x slower (27 s instead of 2.5 s) here.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(train.reshape(len(train), -1), train_labels)
        return float(probe.score(test.reshape(len(test), -1), test_labels))


def usefulness_metrics(
    reference: np.ndarray,
    reference_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    queries: np.ndarray,
    prefix: str = "",
    orders: Sequence[float] = KNN_ORDERS,
) -> dict[str, float]:
    """knn_acc_l{k} for each k (on the test rows at positions ``queries``) and probe_acc, with ``prefix``.

    reference (N, ...) and test (T, ...) are flattened to (rows, features); ``queries`` indexes test.
    Empty when the references hold fewer than 2 classes.
    """
    if len(np.unique(reference_labels)) < 2:
        return {}
    reference_flat = reference.reshape(len(reference), -1)
    test_flat = test.reshape(len(test), -1)
    found = {
        f"{prefix}knn_acc_l{k:g}": knn_accuracy(
            reference_flat, reference_labels, test_flat[queries], test_labels[queries], k
        )
        for k in orders
    }
    found[f"{prefix}probe_acc"] = probe_accuracy(reference_flat, reference_labels, test_flat, test_labels)
    return found
