"""Exact L_k distances, computed in bounded memory, for any k > 0 and k = inf.

    D_k(x, y) = (sum_i |x_i - y_i|^k)^(1/k)      (0 < k < 1 is the fractional "metric" of
    D_inf(x, y) = max_i |x_i - y_i|               Aggarwal, Hinneburg & Keim 2001)

Everything ranks by the power sum S_k = D_k^k (``power_sums``), a monotone function of D_k,
and takes the root only where a distance value is reported (``to_distance``).

Two backends give the same values up to float rounding:

- ``numba`` (default): the compiled kernel of lpae.contrast.kernel, float64 accumulation,
  memory O(Q N) for the output only;
- ``torch``: a second implementation in float64, to check the kernel against. It uses
  torch.cdist where that is exact (k = 1 and k = inf, which never take the matrix-multiply path)
  and otherwise a chunked broadcast |x - y|^k summed over features, never more than
  CHUNK_ELEMENTS terms at once (cdist would be exact for fractional k too, but no faster, and
  returns roots).

k values are plain floats with ``math.inf`` for L_inf; JSON writes inf as the string "inf".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

BACKENDS = ("numba", "torch")
CHUNK_ELEMENTS = 1 << 22  # torch backend: at most 4M float64 terms (32 MiB) per broadcast block


def parse_k_values(text: str | Iterable[float | str]) -> tuple[float, ...]:
    """'0.5,1,2,inf' (or a sequence) -> (0.5, 1.0, 2.0, inf); every k must be > 0, no repeats."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    parts = [p for p in parts if not (isinstance(p, str) and not p)]
    if not parts:
        raise ValueError("k: give at least one value, e.g. 0.5,1,2,inf")
    values: list[float] = []
    for part in parts:
        try:
            k = float(part)
        except (TypeError, ValueError):
            raise ValueError(f"k: {part!r} is not a number > 0 or 'inf'") from None
        if math.isnan(k) or k <= 0:
            raise ValueError(f"k: {part!r} is out of range: every k must be > 0 (or 'inf' for L_inf)")
        if k in values:
            raise ValueError(f"k: {part!r} is given twice")
        values.append(k)
    return tuple(values)


def k_json(k: float) -> float | str:
    """k as written to JSON: a number, or "inf" for L_inf."""
    return "inf" if math.isinf(k) else k


def k_label(k: float) -> str:
    """Short printable name: 0.5 -> 'L0.5', inf -> 'Linf'."""
    return "Linf" if math.isinf(k) else f"L{k:g}"


def to_distance(sums: np.ndarray, k: float) -> np.ndarray:
    """D_k from S_k: the 1/k-th root (L_inf sums are already distances)."""
    if math.isinf(k):
        return sums
    if k == 0.5:
        return sums * sums
    if k == 1:
        return sums
    if k == 2:
        return np.sqrt(sums)
    with np.errstate(over="ignore"):  # inf where D_k passes float64's range (tiny k, large d)
        return sums ** (1.0 / k)


def relative_contrast(smin: np.ndarray, smax: np.ndarray, k: float) -> np.ndarray:
    """(Dmax - Dmin) / Dmin from the power sums, as expm1(log(Smax / Smin) / k).

    Taking the root of the ratio rather than of each sum keeps it finite where D_k itself
    overflows (for small k, D = S^(1/k) passes 1e308 already at S = 1000 when k = 0.01).
    inf where Smin == 0 (a duplicate of the query).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(smax) - np.log(smin)  # log(Dmax / Dmin) times k (times 1 for L_inf)
        ratio = np.expm1(log_ratio if math.isinf(k) else log_ratio / k)
    return np.where(smin > 0, ratio, np.inf)


def check_features(x: np.ndarray, what: str) -> np.ndarray:
    """A C-contiguous (N, d) float32 or float64 array with only finite values."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{what}: expected a 2-d array (samples, features), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: contains NaN or infinite values; distances need finite features")
    return np.ascontiguousarray(x)


def power_sums(queries: np.ndarray, points: np.ndarray, k: float, backend: str | None = None) -> np.ndarray:
    """S_k between every query (Q, d) and every point (N, d): a (Q, N) float64 array."""
    queries = check_features(queries, "queries")
    points = check_features(points, "points")
    return power_sums_t(queries, transpose_points(points, queries.dtype), k, backend)


def lk_distances(queries: np.ndarray, points: np.ndarray, k: float, backend: str | None = None) -> np.ndarray:
    """D_k between every query (Q, d) and every point (N, d): a (Q, N) float64 array."""
    return to_distance(power_sums(queries, points, k, backend), k)


def transpose_points(points: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(N, d) -> contiguous (d, N) in the queries' dtype: the kernel's layout."""
    return np.ascontiguousarray(points.T, dtype=dtype)


def power_sums_t(
    queries: np.ndarray, points_t: np.ndarray, k: float, backend: str | None = None
) -> np.ndarray:
    """S_k for queries (Q, d) against transposed points (d, N), both of one float dtype."""
    check_k(k)
    backend = "numba" if backend is None else backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown distance backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if queries.shape[1] != points_t.shape[0]:
        raise ValueError(f"queries have {queries.shape[1]} features but points have {points_t.shape[0]}")
    if queries.dtype != points_t.dtype:
        raise TypeError(f"queries ({queries.dtype}) and points ({points_t.dtype}) must share a dtype")
    if backend == "numba":
        return numba_power_sums(queries, points_t, k)
    return torch_power_sums(queries, points_t.T, k)


def check_k(k: float) -> None:
    if not (k > 0):  # also rejects NaN
        raise ValueError(f"k must be > 0 (or inf for L_inf), got {k}")


def numba_power_sums(queries: np.ndarray, points_t: np.ndarray, k: float) -> np.ndarray:
    from lpae.contrast.kernel import op_for, power_sums_kernel
    from lpae.numba_threads import torch_threads

    out = np.empty((queries.shape[0], points_t.shape[1]), np.float64)
    if out.size == 0:
        return out
    k_typed = queries.dtype.type(k) if math.isfinite(k) else queries.dtype.type(0)
    with torch_threads():  # torch's thread setting, kept intact
        power_sums_kernel(
            np.ascontiguousarray(queries), np.ascontiguousarray(points_t), op_for(k), k_typed, out
        )
    return out


def torch_power_sums(queries: np.ndarray, points: np.ndarray, k: float) -> np.ndarray:
    q = torch.from_numpy(np.asarray(queries, np.float64))
    p = torch.from_numpy(np.ascontiguousarray(points, np.float64))
    if k in (1.0, math.inf):
        # Exact: the matrix-multiply shortcut exists for p = 2 only.
        return torch.cdist(q, p, p=k).numpy()
    out = torch.empty(q.shape[0], p.shape[0], dtype=torch.float64)
    n_features = max(1, q.shape[1])
    rows = max(1, min(q.shape[0], CHUNK_ELEMENTS // (n_features * max(1, min(p.shape[0], 1024)))))
    cols = max(1, min(p.shape[0], CHUNK_ELEMENTS // (n_features * rows)))
    for q0 in range(0, q.shape[0], rows):
        for p0 in range(0, p.shape[0], cols):
            diff = (q[q0 : q0 + rows, None, :] - p[None, p0 : p0 + cols, :]).abs_()  # (rows, cols, d)
            out[q0 : q0 + rows, p0 : p0 + cols] = diff.pow_(k).sum(-1)
    return out.numpy()


def chunks(n: int, size: int) -> Sequence[tuple[int, int]]:
    """[(0, size), (size, 2 size), ...] covering range(n)."""
    return [(start, min(n, start + size)) for start in range(0, n, size)]
