"""Preprocessing: fitted on the training rows, JSON round trip, the inverse recovers the data;
splits are seeded, disjoint and stratified."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lpae.data import Dataset, Preprocessor, default_method, fit_preprocessor, load, split_indices
from lpae.data.preprocess import UNIT_EPS

rng = np.random.default_rng(0)


@pytest.mark.parametrize("method", ["standard", "minmax", "none"])
@pytest.mark.parametrize("shape", [(7,), (2, 5, 4)])
def test_inverse_recovers_data_after_json_round_trip(method: str, shape: tuple[int, ...]) -> None:
    x = (rng.standard_t(3, size=(200, *shape)) * 50 + 10).astype(np.float32)
    x[:, 0] = 3.0  # a constant feature must survive too
    fitted = fit_preprocessor(x[:150], method)
    restored = Preprocessor.from_json(json.loads(json.dumps(fitted.to_json())))
    z = restored.transform(x[:150])
    assert z.shape == x[:150].shape and z.dtype == np.float32
    np.testing.assert_allclose(restored.inverse(z), x[:150], rtol=1e-5, atol=1e-3)


def test_standard_and_minmax_statistics_come_from_training_rows() -> None:
    x = rng.normal(3.0, 2.0, size=(400, 3)).astype(np.float32)
    train = x[:300]
    z = fit_preprocessor(train, "standard").transform(train)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-5)
    u = fit_preprocessor(train, "minmax").transform(x)
    assert u.min() >= UNIT_EPS and u.max() <= 1 - UNIT_EPS  # unseen rows are clipped into the interval
    np.testing.assert_allclose(
        fit_preprocessor(train, "minmax").transform(train).min(axis=0), UNIT_EPS, atol=1e-7
    )


def test_method_follows_support_and_rejects_unknown() -> None:
    assert default_method("unit") == "minmax" and default_method("real") == "standard"
    with pytest.raises(ValueError, match="unknown preprocessing 'zscore'; allowed: standard, minmax, none"):
        fit_preprocessor(np.zeros((3, 2)), "zscore")


def test_splits_seeded_disjoint_and_stratified() -> None:
    y = load("digits").y
    a, b = split_indices(len(y), 0, y), split_indices(len(y), 0, y)
    assert all(np.array_equal(getattr(a, p), getattr(b, p)) for p in ("train", "val", "test"))
    assert not np.array_equal(a.test, split_indices(len(y), 1, y).test)
    parts = np.concatenate([a.train, a.val, a.test])
    assert len(parts) == len(y) and len(np.unique(parts)) == len(y)
    overall = np.bincount(y) / len(y)
    for part in (a.train, a.val, a.test):
        np.testing.assert_allclose(np.bincount(y[part], minlength=10) / len(part), overall, atol=0.02)


def test_fixed_test_rows_are_the_test_split() -> None:
    """A data set's own test part (MNIST's standard test images) is every seed's test split."""
    dataset = load("digits")
    fixed = np.arange(1500, len(dataset.y))
    held = Dataset("held", dataset.x, dataset.y, test_rows=fixed[::-1])
    assert np.array_equal(held.test_rows, fixed)
    for seed in (0, 1):
        splits = split_indices(len(held.x), seed, held.y, test_rows=held.test_rows)
        assert np.array_equal(splits.test, fixed)
        assert len(splits.val) == round(0.15 * len(held.x))
        parts = np.concatenate([splits.train, splits.val, splits.test])
        assert len(np.unique(parts)) == len(held.x)
    assert held.subset(np.arange(100)).test_rows is None
    with pytest.raises(ValueError, match="test_rows"):
        Dataset("bad", dataset.x, dataset.y, test_rows=np.array([len(dataset.y)]))
    with pytest.raises(ValueError, match="validation rows"):
        split_indices(10, 0, test_rows=np.arange(1, 10))
