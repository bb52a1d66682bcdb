"""Preprocessing fitted on the training split, stored as JSON, invertible.

- ``standard``: z = (x - mean) / std per feature (std of constant features replaced by 1).
- ``minmax``: u = eps + (1 - 2 eps) (x - min) / (max - min), into (eps, 1 - eps), for likelihoods
  on the unit interval; values beyond the training range are clipped into it.
- ``none``: identity.

The data's quantization (lpae.data.quantization) follows into the model's space: the bin width
divided by the feature's scale (std, or range / (1 - 2 eps) for minmax), the lattice's lowest and
highest values transformed like the data. ``Preprocessor.quantization`` holds it (None:
continuous, and what a config.json written before quantization was recorded reads as).

Statistics are computed in one pass over the training rows, STATS_ROWS rows at a time, so that
neither a copy of the training rows nor a float64 copy of anything larger than a chunk is made
(and a memory-mapped file, lpae.data.stream, is read once): per chunk its float64 mean and sum of
squared deviations, merged into the running ones by Chan, Golub and LeVeque's update
(n = n_a + n_b, delta = mean_b - mean_a, mean = mean_a + delta n_b / n,
M2 = M2_a + M2_b + delta^2 n_a n_b / n; std = sqrt(M2 / n), the population std), and the
running minimum and maximum.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lpae.data.quantization import Quantization

METHODS = ("standard", "minmax", "none")
UNIT_EPS = 1e-3
STATS_ROWS = 65536  # rows per chunk of the statistics pass (module docstring)


@dataclass
class Preprocessor:
    method: str
    shift: np.ndarray  # per-feature, shape of one sample
    scale: np.ndarray
    eps: float = UNIT_EPS
    quantization: Quantization | None = None  # in the model's space

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.shift) / self.scale
        if self.method == "minmax":
            z = np.clip(z, 0.0, 1.0) * (1 - 2 * self.eps) + self.eps
        return z.astype(np.float32, copy=False)

    def transform_rows(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """transform(x[rows]) for row indices ``rows``, STATS_ROWS rows at a time into one float32
        array: the gathered rows are never copied whole (nor the temporaries of transform)."""
        out = np.empty((len(rows), *x.shape[1:]), dtype=np.float32)
        for start in range(0, len(rows), STATS_ROWS):
            out[start : start + STATS_ROWS] = self.transform(x[rows[start : start + STATS_ROWS]])
        return out

    def inverse(self, z: np.ndarray) -> np.ndarray:
        if self.method == "minmax":
            z = (z - self.eps) / (1 - 2 * self.eps)
        return (z * self.scale + self.shift).astype(np.float32)

    def model_quantization(self, quantization: Quantization | None) -> Quantization | None:
        """A lattice in the data's units mapped into the model's space (module docstring)."""
        if quantization is None or not quantization.any:
            return None
        factor = (1 - 2 * self.eps) if self.method == "minmax" else 1.0
        step = quantization.step / self.scale.astype(np.float64) * factor
        low = self.transform(quantization.low[None].astype(np.float32))[0].astype(np.float64)
        high = self.transform(quantization.high[None].astype(np.float32))[0].astype(np.float64)
        return Quantization(step, low, high)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "method": self.method,
            "shape": list(self.shift.shape),
            "shift": self.shift.ravel().tolist(),
            "scale": self.scale.ravel().tolist(),
            "eps": self.eps,
        }
        if self.quantization is not None:
            found["quantization"] = self.quantization.to_json()
        return found

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessor:
        shape = tuple(data["shape"])
        quantization = data.get("quantization")
        return cls(
            data["method"],
            np.asarray(data["shift"], dtype=np.float32).reshape(shape),
            np.asarray(data["scale"], dtype=np.float32).reshape(shape),
            float(data.get("eps", UNIT_EPS)),
            None if quantization is None else Quantization.from_json(quantization, shape),
        )


def fit_preprocessor(
    x_train: np.ndarray,
    method: str,
    quantization: Quantization | None = None,
    rows: np.ndarray | None = None,
) -> Preprocessor:
    """Fit per-feature statistics on the training rows ``x_train[rows]`` (every row when ``rows``
    is None) of shape (N, *shape), in one chunked pass (module docstring); the data's
    ``quantization`` (in its units) is kept in the model's space."""
    if method not in METHODS:
        raise ValueError(f"unknown preprocessing {method!r}; allowed: {', '.join(METHODS)}")
    shape = x_train.shape[1:]
    if method == "standard":
        shift, scale = feature_moments(x_train, rows)
    elif method == "minmax":
        shift, high = feature_range(x_train, rows)
        scale = high - shift
    else:
        shift, scale = np.zeros(shape), np.ones(shape)
    scale = np.where(scale > 1e-12, scale, 1.0)
    fitted = Preprocessor(method, shift.astype(np.float32), scale.astype(np.float32))
    fitted.quantization = fitted.model_quantization(quantization)
    return fitted


def row_chunks(x: np.ndarray, rows: np.ndarray | None) -> Iterator[np.ndarray]:
    """x[rows] (all of x when rows is None), STATS_ROWS rows at a time."""
    n_rows = len(x) if rows is None else len(rows)
    for start in range(0, n_rows, STATS_ROWS):
        yield x[start : start + STATS_ROWS] if rows is None else x[rows[start : start + STATS_ROWS]]


def feature_moments(x: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and population std of x[rows], float64, merged chunk by chunk (module
    docstring: Chan, Golub and LeVeque's pairwise update)."""
    count, mean, m2 = 0, np.zeros(x.shape[1:]), np.zeros(x.shape[1:])
    for chunk in row_chunks(x, rows):
        part = chunk.astype(np.float64)  # (chunk, *shape)
        n_part = len(part)
        part_mean = part.mean(axis=0)
        part_m2 = np.square(part - part_mean).sum(axis=0)
        total = count + n_part
        delta = part_mean - mean
        mean = mean + delta * (n_part / total)
        m2 = m2 + part_m2 + np.square(delta) * (count * n_part / total)
        count = total
    if count == 0:
        raise ValueError("cannot fit preprocessing statistics on zero training rows")
    return mean, np.sqrt(m2 / count)


def feature_range(x: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature minimum and maximum of x[rows], one chunk at a time."""
    low, high = None, None
    for chunk in row_chunks(x, rows):
        chunk_low, chunk_high = chunk.min(axis=0), chunk.max(axis=0)
        low = chunk_low if low is None else np.minimum(low, chunk_low)
        high = chunk_high if high is None else np.maximum(high, chunk_high)
    if low is None or high is None:
        raise ValueError("cannot fit preprocessing statistics on zero training rows")
    return low, high


def default_method(support: str) -> str:
    """Preprocessing that follows a criterion's support: unit-interval families need minmax."""
    return "minmax" if support == "unit" else "standard"
