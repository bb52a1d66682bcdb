"""Evaluation protocols that change what a run trains on: one-class training and contamination.

One-class protocol (``--normal-classes 0,1,4``): the training and validation splits keep only
the rows whose label is a normal class; the test split keeps every class, and its rows of other
classes are the anomalies that lpae.metrics scores (AUROC / AUPRC). Preprocessing is fitted on
the normal training rows, as a one-class user would have to.

Contamination (``--contaminate FRACTION``): round(FRACTION * n_train) training rows, chosen by
a seeded generator, are replaced by gross outliers, drawn per feature as

    x_outlier[j] = mean_j + OUTLIER_STD * std_j * e_j,     e_j ~ N(0, 1),   OUTLIER_STD = 10,

with mean_j and std_j of the clean training rows (in original units): ten standard deviations
in every feature, as the synthetic generator's outliers N(0, 10^2 I) are for unit-variance data.
Constant features stay constant. Validation and test rows are never contaminated, and the
preprocessing is fitted on the clean training rows, so runs with and without contamination
share one preprocessed space and their test metrics compare directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

OUTLIER_STD = 10.0


def check_normal_classes(
    classes: Sequence[int] | None, labels: np.ndarray | None, data_name: str
) -> tuple[int, ...] | None:
    """The normal classes as a sorted tuple, after checking them against the data set's labels."""
    if classes is None:
        return None
    if isinstance(classes, str | bytes) or not all(
        isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes
    ):
        raise TypeError(f"normal classes must be integer class labels, got {classes!r}")
    chosen = tuple(sorted({int(c) for c in classes}))
    if not chosen:
        raise ValueError("--normal-classes: give at least one class label, e.g. 0,1,4")
    if labels is None:
        raise ValueError(
            f"--normal-classes needs a labelled data set; {data_name!r} has no labels "
            "(one-class evaluation marks the test rows of the other classes as anomalies)"
        )
    present = sorted(int(c) for c in np.unique(labels))
    missing = [c for c in chosen if c not in present]
    if missing:
        raise ValueError(
            f"--normal-classes: {', '.join(map(str, missing))} not among the classes of "
            f"{data_name!r} ({', '.join(map(str, present))})"
        )
    if len(chosen) == len(present):
        raise ValueError(
            f"--normal-classes names every class of {data_name!r}; leave at least one class out "
            "to serve as anomalies"
        )
    return chosen


def check_fraction(fraction: float) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise TypeError(f"--contaminate must be a number in [0, 1), got {fraction!r}")
    if not 0 <= fraction < 1:
        raise ValueError(f"--contaminate must be a fraction in [0, 1), got {fraction:g}")
    return float(fraction)


def normal_rows(rows: np.ndarray, labels: np.ndarray | None, classes: Sequence[int] | None) -> np.ndarray:
    """The entries of ``rows`` whose label is one of ``classes`` (all of them when classes is None)."""
    if classes is None:
        return rows
    if labels is None:
        raise ValueError("the one-class protocol (normal_classes) needs a labelled data set")
    return rows[np.isin(labels[rows], np.asarray(classes))]


def anomaly_subsample(
    rows: np.ndarray, labels: np.ndarray | None, classes: Sequence[int], rate: float, seed: int
) -> np.ndarray:
    """The test rows of a one-class run with anomalies (rows outside ``classes``) a ``rate`` of
    them: every normal row, and a seeded random subset of round(rate / (1 - rate) * normal)
    anomalies (all of them if fewer; at least one when there are any), in their original order.

    Without it, one normal digit against nine others makes anomalies 90% of the test rows, where
    AUPRC's chance level is 0.9 and every AUROC near 1: the criteria cannot be told apart."""
    if labels is None:
        raise ValueError("the one-class protocol (normal_classes) needs a labelled data set")
    if not 0 < rate < 1:
        raise ValueError(f"anomaly rate must be a fraction in (0, 1), got {rate}")
    normal = np.isin(labels[rows], np.asarray(classes))
    anomalies = rows[~normal]
    wanted = max(1, round(rate / (1 - rate) * int(normal.sum()))) if len(anomalies) else 0
    if wanted >= len(anomalies):
        return rows
    keep = np.random.default_rng(seed).choice(len(anomalies), size=wanted, replace=False)
    return np.sort(np.concatenate([rows[normal], anomalies[keep]]))


def contaminate(x_train: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy of x_train (N, *shape) with a fraction of rows replaced by gross outliers, and the mask (N,)."""
    fraction = check_fraction(fraction)
    n_rows = len(x_train)
    n_outliers = int(round(fraction * n_rows))
    mask = np.zeros(n_rows, dtype=bool)
    if n_outliers == 0:
        return x_train, mask
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x0C0A]))  # its own stream
    rows = np.sort(rng.choice(n_rows, size=n_outliers, replace=False))
    mask[rows] = True
    clean = x_train.astype(np.float64)
    mean, std = clean.mean(axis=0), clean.std(axis=0)  # (*shape,) per feature
    noise = rng.standard_normal((n_outliers, *x_train.shape[1:]))  # (n_outliers, *shape)
    x = x_train.copy()
    x[rows] = (mean + OUTLIER_STD * std * noise).astype(x_train.dtype)
    return x, mask
