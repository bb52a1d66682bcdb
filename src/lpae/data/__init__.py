"""Data: built-in sets, splits and preprocessing. ``load(spec)`` returns a :class:`Dataset`."""

from lpae.data import builtin  # noqa: F401  (registers the built-in sets)
from lpae.data.dataset import Dataset, Splits, split_indices
from lpae.data.preprocess import Preprocessor, default_method, fit_preprocessor
from lpae.data.registry import DATASETS, missing_requirement


def load(spec: str) -> Dataset:
    """Load a data set by spec, e.g. ``load("digits")``."""
    entry, values = DATASETS.resolve(spec)
    command = missing_requirement(entry.name)
    if command is not None:
        raise ValueError(f"data set {entry.name!r} needs an optional package: {command}")
    return entry.factory(**values)


__all__ = [
    "DATASETS",
    "Dataset",
    "Preprocessor",
    "Splits",
    "default_method",
    "fit_preprocessor",
    "load",
    "missing_requirement",
    "split_indices",
]
