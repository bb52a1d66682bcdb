"""Quantization: the lattice a data set's values are stored on (8-bit pixels, integer counts).

A :class:`Quantization` holds per feature (arrays of the shape of one sample) the bin width
``step`` (0: a continuous feature), and the lowest and highest lattice values ``low`` and
``high``: a value x stands for its bin [x - step/2, x + step/2], and the bins at ``low`` and
``high`` extend to -inf and +inf, so a feature's bins partition the real line (the discretized
likelihood of PixelCNN++, Salimans et al. 2017; lpae.criteria.discrete).

Built-in sets declare theirs (lpae.data.sklearn_sets, images, mnist); files are detected
(:func:`detect`) unless the spec says otherwise with ``quantized=auto|none|STEP``
(:func:`from_option`). The detection rule, per feature (per column of a table; one lattice for
every pixel of images, which share their units):

1. the sorted distinct values u lie on a lattice u_0 + k delta: delta is the float GCD of the gaps
   between distinct values up to GAP_SPAN = 16 times the smallest (Euclid's algorithm to a
   tolerance), refined by least squares over every value, and every value is within
   LATTICE_TOLERANCE = 1% of a step (or a few float32 roundings of the largest magnitude) of a
   lattice point;
2. the lattice is coarse against the feature's spread: delta > STEP_FRACTION = 1e-3 of the
   feature's standard deviation. A CSV written with six decimals lies on a lattice of 1e-6, which
   matters to no likelihood: such a feature is continuous. A feature with one distinct value has
   no step and is continuous.

Preprocessing maps the lattice into the model's space (lpae.data.preprocess): standardising
divides the step by the feature's std, min-max scaling by its range (times 1 - 2 eps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lpae.data.dataset import Dataset

LATTICE_TOLERANCE = 0.01  # of a step: how far from a lattice point a value may lie
SCREEN_ROWS = 65536  # rows a memory-mapped column is screened on (is_memory_mapped)
STEP_FRACTION = 1e-3  # a lattice counts when its step exceeds this fraction of the feature's std
FLOAT32_ROUNDING = 4 * float(np.finfo(np.float32).eps)  # per unit of magnitude
GCD_ROUNDS = 60
GAP_SPAN = 16  # gaps up to this many times the smallest one go into the GCD


@dataclass(frozen=True)
class Quantization:
    """Per feature: bin width ``step`` (0 = continuous), lowest and highest lattice values."""

    step: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def uniform(cls, shape: tuple[int, ...], step: float, low: float, high: float) -> Quantization:
        """Every feature on one declared lattice (a built-in set's grey levels)."""
        return cls(
            np.full(shape, step, np.float64),
            np.full(shape, low, np.float64),
            np.full(shape, high, np.float64),
        )

    @property
    def any(self) -> bool:
        return bool((self.step > 0).any())

    def bin_offsets(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper): the bin of each element of x (N, *shape) as offsets from x, -step/2 or
        -inf and +step/2 or +inf (the edge bins); 0 and 0 on continuous features. A value beyond
        the lattice's range counts in the edge bin."""
        x = np.asarray(x, dtype=np.float64)
        half = np.broadcast_to(self.step / 2, x.shape)
        quantized = half > 0
        lowest = x < self.low + half  # within half a step of low, or below it
        highest = x > self.high - half
        lower = np.where(lowest, -np.inf, np.where(highest, self.high - half - x, -half))
        upper = np.where(highest, np.inf, np.where(lowest, self.low + half - x, half))
        return np.where(quantized, lower, 0.0), np.where(quantized, upper, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step.ravel().tolist(),
            "low": self.low.ravel().tolist(),
            "high": self.high.ravel().tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], shape: tuple[int, ...]) -> Quantization:
        def read(key: str) -> np.ndarray:
            return np.asarray(data[key], dtype=np.float64).reshape(shape)

        return cls(read("step"), read("low"), read("high"))


def float_gcd(values: np.ndarray, tolerance: float) -> float:
    """The largest delta of which every value is a multiple, to ``tolerance`` (Euclid's algorithm)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    delta = float(ordered[0])
    for value in ordered[1:]:
        a, b = float(value), delta
        for _ in range(GCD_ROUNDS):
            if b <= tolerance:
                break
            a, b = b, math.fmod(a, b)
            if b > a - tolerance:  # a remainder within tolerance of a full step is 0
                b = 0.0
        delta = a
    return delta


def lattice_step(values: np.ndarray) -> float:
    """The step of the lattice the values lie on by rule 1 of the module docstring; 0 if none."""
    # unique before the cast to float64 (exact and monotone): no float64 copy of all the values
    distinct = np.unique(np.asarray(values)).astype(np.float64)
    if len(distinct) < 2:
        return 0.0
    gaps = np.unique(np.diff(distinct))
    smallest = float(gaps[0])
    rounding = FLOAT32_ROUNDING * float(np.abs(distinct).max())
    tolerance = max(smallest * LATTICE_TOLERANCE, rounding)
    # the lattice shows in the small gaps; large ones only add rounding error to Euclid's remainders
    delta = float_gcd(gaps[gaps <= GAP_SPAN * smallest], tolerance)
    if delta <= tolerance:
        return 0.0
    spread = distinct - distinct[len(distinct) // 2]  # from the middle, where the values are dense
    reach = float(GAP_SPAN)
    for _ in range(GCD_ROUNDS):  # least squares over ever more values: the step's error shrinks
        near = np.abs(spread) <= reach * delta
        k = np.round(spread[near] / delta)
        if not (k * k).sum() > 0:
            return 0.0
        delta = float((spread[near] * k).sum() / (k * k).sum())
        if near.all() or not delta > 0:
            break
        reach *= GAP_SPAN
    if not delta > 0:
        return 0.0
    allowed = LATTICE_TOLERANCE * delta
    if rounding > allowed:  # a step the float32 values cannot resolve
        return 0.0
    off = np.abs(spread / delta - np.round(spread / delta)) * delta
    return delta if float(off.max()) <= allowed else 0.0


def coarse(step: float, values: np.ndarray) -> bool:
    """Rule 2: the step exceeds STEP_FRACTION of the values' standard deviation."""
    return step > 0 and step > STEP_FRACTION * float(np.std(values, dtype=np.float64))


def is_memory_mapped(x: np.ndarray) -> bool:
    """Whether x is a view of a memory-mapped file (lpae.data.stream).

    Detection on such a file screens each column on its first SCREEN_ROWS rows: a column whose
    first rows lie on no lattice is taken as continuous without reading the rest, since reading one
    column of a row-major file reads all of it (a subset of a lattice's values lies on that
    lattice, so a quantized column passes the screen; in memory every column is read whole)."""
    view: np.ndarray | None = x
    while view is not None:
        if isinstance(view, np.memmap):
            return True
        view = view.base if isinstance(view.base, np.ndarray) else None
    return False


def detect(x: np.ndarray, image: bool) -> Quantization | None:
    """The lattice of data x (N, *shape) by the rule of the module docstring: per feature for
    tables, one for every pixel of images; None when no feature is quantized."""
    shape = x.shape[1:]
    if image:
        step = lattice_step(x)
        if not coarse(step, x):
            return None
        return Quantization.uniform(shape, step, float(x.min()), float(x.max()))
    flat = x.reshape(len(x), -1)  # (N, D)
    steps = np.zeros(flat.shape[1])
    mapped = is_memory_mapped(x)
    for j in range(flat.shape[1]):  # one float64 column at a time, never a float64 copy of x
        if mapped and len(flat) > SCREEN_ROWS and not lattice_step(flat[:SCREEN_ROWS, j]) > 0:
            continue  # screened out on its first rows (see is_memory_mapped): continuous
        column = flat[:, j].astype(np.float64)
        step = lattice_step(column)
        steps[j] = step if coarse(step, column) else 0.0
    if not (steps > 0).any():
        return None
    low = flat.min(axis=0).astype(np.float64)  # exact: float32 values are float64 values
    high = flat.max(axis=0).astype(np.float64)
    return Quantization(steps.reshape(shape), low.reshape(shape), high.reshape(shape))


def declared(x: np.ndarray, step: float, source: str) -> Quantization:
    """A user's ``quantized=STEP`` for every feature, checked: each value must lie on a lattice of
    that step (within LATTICE_TOLERANCE of a step) starting at its feature's lowest value."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(len(x), -1)
    low = flat.min(axis=0)
    k = (flat - low) / step
    off = np.abs(k - np.round(k)).max(axis=0)  # (D,) in steps
    allowed = np.maximum(LATTICE_TOLERANCE, FLOAT32_ROUNDING * np.abs(flat).max(axis=0) / step)
    bad = np.flatnonzero(off > allowed)
    if len(bad):
        raise ValueError(
            f"{source}: quantized={step:g}, but feature(s) {', '.join(map(str, bad[:8].tolist()))} have "
            f"values off a lattice of that step (up to {float(off.max()):.3g} steps away); give the "
            "right step, quantized=auto to detect it, or quantized=none"
        )
    shape = x.shape[1:]
    return Quantization(np.full(shape, step), low.reshape(shape), flat.max(axis=0).reshape(shape))


QUANTIZED_OPTION = "quantized"
QUANTIZED_HELP = "auto (detect the lattice), none (continuous), or a bin width STEP for every feature"


def bin_width(value: str) -> float | None:
    """A STEP written as text: the positive finite number it names, or None."""
    try:
        step = float(value)
    except ValueError:
        return None
    return step if math.isfinite(step) and step > 0 else None


def check_setting(text: str) -> str:
    """The run setting ``quantized`` (``lpae train --quantized``): auto, none or a positive STEP."""
    value = str(text).strip().lower()
    if value not in ("auto", "none") and bin_width(value) is None:
        raise ValueError(f"quantized must be auto, none or a positive bin width, got {text!r}")
    return value


def run_quantization(setting: str, dataset: Dataset) -> Quantization | None:
    """The lattice a run trains and is scored on: the data set's own (declared by a built-in,
    detected in or given by a file, ``quantized=`` in its spec) under ``auto``, else what the
    run setting says: none (continuous) or one bin width STEP for every feature, checked."""
    value = check_setting(setting)
    if value == "auto":
        return dataset.quantization
    return from_option(value, dataset.x, dataset.kind == "image", f"--quantized for {dataset.name!r}")


def from_option(text: str | None, x: np.ndarray, image: bool, source: str) -> Quantization | None:
    """The quantization a file spec's ``quantized=`` option asks for (default auto)."""
    value = "auto" if text is None else str(text).strip().lower()
    if value == "auto":
        return detect(x, image)
    if value == "none":
        return None
    step = bin_width(value)
    if step is None:
        raise ValueError(f"{source}: quantized={text!r} is not allowed; use {QUANTIZED_HELP}")
    return declared(x, step, source)
