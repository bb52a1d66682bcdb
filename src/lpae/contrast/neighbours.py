"""Every point as a query against the rest: nearest and farthest distance, and the L nearest neighbours.

For each query q and each k, with the query itself left out:

    Dmin_k(q) = min_{p != q} D_k(q, p),   Dmax_k(q) = max_{p != q} D_k(q, p),
    RC_k(q)   = (Dmax_k(q) - Dmin_k(q)) / Dmin_k(q)        (inf when a duplicate gives Dmin = 0)

Neighbour ranks are by (distance, index): among points at exactly the same distance the one
with the lower row index comes first, so results never depend on a sort's stability or the
number of threads. A duplicate of the query (distance 0) is a neighbour like any other point.

Memory: queries are taken in blocks whose (block, N) float64 distance rows fit in BLOCK_BYTES,
so memory is O(N d + block N), never O(N^2) or O(N^2 d).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lpae.contrast.distances import (
    check_features,
    chunks,
    power_sums_t,
    relative_contrast,
    to_distance,
    transpose_points,
)

BLOCK_BYTES = 32 << 20  # one (block, N) float64 array of power sums


@dataclass
class NeighbourScan:
    """Per-query results of one k: Dmin, Dmax, (Dmax - Dmin) / Dmin (inf where Dmin == 0),
    all (N,), and the neighbours' row indices (N, L)."""

    k: float
    dmin: np.ndarray
    dmax: np.ndarray
    rel_contrast: np.ndarray
    neighbours: np.ndarray


def nearest_by_key(keys: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Column indices of the n_neighbors smallest keys of each row, ordered by (key, index).

    keys: (B, N) with at least n_neighbors finite entries per row. Returns (B, n_neighbors).
    """
    n_rows = keys.shape[0]
    if n_neighbors == 0:
        return np.empty((n_rows, 0), np.int64)
    # The L-th smallest key of each row bounds the candidates; a tie at the boundary admits
    # extra candidates, and the (key, index) sort below picks among them.
    kth = np.partition(keys, n_neighbors - 1, axis=1)[:, n_neighbors - 1 : n_neighbors]  # (B, 1)
    rows, cols = np.nonzero(keys <= kth)
    order = np.lexsort((cols, keys[rows, cols], rows))  # by row, then key, then index
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(n_rows))  # first candidate of each row
    return cols[starts[:, None] + np.arange(n_neighbors)]


def scan(x: np.ndarray, k: float, n_neighbors: int = 0, backend: str | None = None) -> NeighbourScan:
    """All-pairs scan of the rows of x (N, d) under L_k."""
    x = check_features(x, "features")
    n_points = x.shape[0]
    if n_points < 2:
        raise ValueError(f"need at least 2 points to compare distances, got {n_points}")
    if not 0 <= n_neighbors <= n_points - 1:
        raise ValueError(
            f"neighbors must be between 0 and {n_points - 1} (the number of other points), got {n_neighbors}"
        )
    points_t = transpose_points(x, x.dtype)  # (d, N), shared by every block
    block = max(1, min(n_points, BLOCK_BYTES // (8 * n_points)))
    smin = np.empty(n_points)  # power sums of the nearest and farthest other point
    smax = np.empty(n_points)
    neighbours = np.empty((n_points, n_neighbors), np.int64)
    for start, stop in chunks(n_points, block):
        keys = power_sums_t(x[start:stop], points_t, k, backend)  # (B, N)
        own = (np.arange(stop - start), np.arange(start, stop))  # each query's own column
        keys[own] = np.inf
        smin[start:stop] = keys.min(axis=1)
        neighbours[start:stop] = nearest_by_key(keys, n_neighbors)
        keys[own] = -np.inf
        smax[start:stop] = keys.max(axis=1)
    rel_contrast = relative_contrast(smin, smax, k)
    return NeighbourScan(k, to_distance(smin, k), to_distance(smax, k), rel_contrast, neighbours)


def same_class_counts(neighbours: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How many of each query's neighbours share its label: (N,) integers in 0..L."""
    labels = np.asarray(labels)
    return (labels[neighbours] == labels[:, None]).sum(axis=1)
