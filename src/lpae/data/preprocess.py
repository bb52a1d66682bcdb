"""Preprocessing fitted on the training split, stored as JSON, invertible.

- ``standard``: z = (x - mean) / std per feature (std of constant features replaced by 1).
- ``minmax``: u = eps + (1 - 2 eps) (x - min) / (max - min), into (eps, 1 - eps), for likelihoods
  on the unit interval; values beyond the training range are clipped into it.
- ``none``: identity.

The data's quantization (lpae.data.quantization) follows into the model's space: the bin width
divided by the feature's scale (std, or range / (1 - 2 eps) for minmax), the lattice's lowest and
highest values transformed like the data. ``Preprocessor.quantization`` holds it (None:
continuous, and what a config.json written before quantization was recorded reads as).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lpae.data.quantization import Quantization

METHODS = ("standard", "minmax", "none")
UNIT_EPS = 1e-3


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
        return z.astype(np.float32)

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
    x_train: np.ndarray, method: str, quantization: Quantization | None = None
) -> Preprocessor:
    """Fit per-feature statistics on the training rows x_train of shape (N, *shape); the data's
    ``quantization`` (in its units) is kept in the model's space."""
    if method not in METHODS:
        raise ValueError(f"unknown preprocessing {method!r}; allowed: {', '.join(METHODS)}")
    shape = x_train.shape[1:]
    if method == "standard":
        shift = x_train.mean(axis=0)
        scale = x_train.std(axis=0)
    elif method == "minmax":
        shift = x_train.min(axis=0)
        scale = x_train.max(axis=0) - shift
    else:
        shift, scale = np.zeros(shape), np.ones(shape)
    scale = np.where(scale > 1e-12, scale, 1.0)
    fitted = Preprocessor(method, shift.astype(np.float32), scale.astype(np.float32))
    fitted.quantization = fitted.model_quantization(quantization)
    return fitted


def default_method(support: str) -> str:
    """Preprocessing that follows a criterion's support: unit-interval families need minmax."""
    return "minmax" if support == "unit" else "standard"
