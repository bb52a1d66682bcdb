"""The in-memory data set every loader returns, and its seeded train / validation / test split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from lpae.data.quantization import Quantization

KINDS = ("tabular", "image")


class DataWarning(UserWarning):
    """Data were changed on loading (columns or rows dropped); the message says what and why."""


@dataclass
class Dataset:
    """Samples ``x`` of shape (N, *shape) as float32, optional integer labels ``y`` (N,).

    ``clean`` holds the noise-free signal for synthetic data (same shape as ``x``), so metrics
    can be computed against the truth; ``info`` carries free-form facts (noise family, source).
    ``test_rows`` marks a data set's own test part (MNIST's standard 10,000 test images): every
    run then tests on exactly those rows (see :func:`split_indices`). ``quantization``: the lattice
    the values are stored on, in the units of ``x`` (lpae.data.quantization); None: continuous.
    """

    name: str
    x: np.ndarray
    y: np.ndarray | None = None
    clean: np.ndarray | None = None
    kind: str = "tabular"  # "tabular" or "image" (then a sample is (C, H, W))
    info: dict[str, Any] = field(default_factory=dict)
    test_rows: np.ndarray | None = None
    quantization: Quantization | None = None

    def __post_init__(self) -> None:
        self.x = np.ascontiguousarray(self.x, dtype=np.float32)
        if self.x.ndim < 2 or len(self.x) == 0:
            raise ValueError(f"data set {self.name!r}: expected at least one sample of at least one feature")
        if self.kind not in KINDS:
            raise ValueError(f"data set {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "image" and self.x.ndim != 4:
            raise ValueError(f"data set {self.name!r}: images must be (N, C, H, W), got {self.x.shape}")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"data set {self.name!r}: {len(self.y)} labels for {len(self.x)} samples")
        if self.clean is not None:
            self.clean = np.ascontiguousarray(self.clean, dtype=np.float32)
        if self.test_rows is not None:
            self.test_rows = np.unique(np.asarray(self.test_rows, dtype=np.int64))
            if len(self.test_rows) and not 0 <= self.test_rows[0] <= self.test_rows[-1] < len(self.x):
                raise ValueError(f"data set {self.name!r}: test_rows must index its {len(self.x)} samples")
        if self.quantization is not None and self.quantization.step.shape != self.shape:
            raise ValueError(
                f"data set {self.name!r}: quantization of shape {self.quantization.step.shape} for "
                f"samples of shape {self.shape}"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample: (D,) for tabular data, (C, H, W) for images."""
        return tuple(self.x.shape[1:])

    @property
    def n_features(self) -> int:
        return int(np.prod(self.shape))

    def subset(self, index: np.ndarray) -> Dataset:
        """The samples at ``index``; per-sample arrays in ``info`` (e.g. outlier_mask) follow them.

        The subset has no fixed test rows: it is split like any other data."""
        n_samples = len(self.x)
        info = {
            key: value[index] if isinstance(value, np.ndarray) and len(value) == n_samples else value
            for key, value in self.info.items()
        }
        return Dataset(
            self.name,
            self.x[index],
            None if self.y is None else self.y[index],
            None if self.clean is None else self.clean[index],
            self.kind,
            info,
            quantization=self.quantization,
        )


@dataclass
class Splits:
    """Row indices of the train, validation and test parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(
    n_samples: int,
    seed: int,
    labels: np.ndarray | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    test_rows: np.ndarray | None = None,
) -> Splits:
    """Seeded split of range(n_samples), stratified by ``labels`` when every class allows it.

    With ``test_rows`` (a data set's own test part) those rows are the test split whatever
    ``test_fraction`` says, and round(val_fraction x n_samples) of the other rows are validation.
    """
    if n_samples < 3:
        raise ValueError(f"need at least 3 samples to split into train, validation and test; got {n_samples}")
    index = np.arange(n_samples)

    def stratify(part: np.ndarray) -> np.ndarray | None:
        if labels is None:
            return None
        _, counts = np.unique(labels[part], return_counts=True)
        return labels[part] if counts.min() >= 2 else None

    if test_rows is not None:
        test = np.asarray(test_rows, dtype=np.int64)
        rest = np.setdiff1d(index, test)
        n_val = round(val_fraction * n_samples)
        if n_val < 1 or len(rest) - n_val < 1:
            raise ValueError(
                f"cannot take {n_val} validation rows from the {len(rest)} rows outside the fixed test split"
            )
        val_size: float | int = n_val
    else:
        rest, test = train_test_split(
            index, test_size=test_fraction, random_state=seed, stratify=stratify(index)
        )
        val_size = val_fraction / (1 - test_fraction)
    # scikit-learn takes seeds below 2**32: the largest seed's offset wraps (no other seed moves)
    val_seed = (seed + 1) % 2**32
    train, val = train_test_split(rest, test_size=val_size, random_state=val_seed, stratify=stratify(rest))
    return Splits(np.sort(train), np.sort(val), np.sort(test))
