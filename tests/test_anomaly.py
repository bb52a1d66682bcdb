"""LpAnomalyDetector: planted outliers found (AUROC > 0.95), PyOD's interface, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from lpae import LpAnomalyDetector
from lpae.data import load

SMALL = {"hidden": (32,), "latent": 2, "epochs": 20, "batch_size": 32, "lr": 3e-3, "random_state": 0}


def planted(rows: np.ndarray, seed: int) -> np.ndarray:
    """Off-manifold rows with the inliers' marginals: every feature permuted independently."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.permutation(rows[:, j]) for j in range(rows.shape[1])])


@pytest.fixture(scope="module")
def toy() -> dict[str, np.ndarray]:
    """A noisy 2-d manifold in 16 dimensions; 700 training rows, 300 held-out inliers + 60 planted."""
    x = load("synthetic:n=1000,dim=16,latent=2,noise=gaussian,scale=0.1,seed=0").x.astype(np.float64)
    train, held_out = x[:700], x[700:]
    outliers = planted(held_out[:60], seed=1)
    return {
        "train": train,
        "test": np.vstack([held_out, outliers]),
        "truth": np.r_[np.zeros(len(held_out)), np.ones(len(outliers))],
    }


@pytest.fixture(scope="module")
def detector(toy) -> LpAnomalyDetector:
    return LpAnomalyDetector(loss="student_t:df=learned", contamination=0.05, **SMALL).fit(toy["train"])


def test_planted_outliers_are_found(detector, toy) -> None:
    auroc = roc_auc_score(toy["truth"], detector.decision_function(toy["test"]))
    assert auroc > 0.95


def test_planted_outliers_are_found_by_an_l2_detector_too(toy) -> None:
    l2 = LpAnomalyDetector(loss="l2", contamination=0.05, **SMALL).fit(toy["train"])
    assert roc_auc_score(toy["truth"], l2.decision_function(toy["test"])) > 0.95


def test_outliers_inside_the_training_data_are_found(toy) -> None:
    train = toy["train"].copy()
    mask = np.zeros(len(train), dtype=bool)
    mask[::20] = True  # 5 % of the rows
    train[mask] = planted(train[mask], seed=2)
    fitted = LpAnomalyDetector(loss="lp:1", contamination=0.05, **SMALL).fit(train)
    assert roc_auc_score(mask, fitted.decision_scores_) > 0.95
    assert fitted.labels_[mask].mean() > 0.5  # most planted rows are above the threshold


def test_pyod_interface(detector, toy) -> None:
    train = toy["train"]
    scores = detector.decision_scores_
    assert scores.shape == (len(train),)
    np.testing.assert_array_equal(scores, detector.decision_function(train))
    np.testing.assert_array_equal(scores, -detector.score_samples(train))  # NLL = -log-likelihood
    assert detector.threshold_ == pytest.approx(np.percentile(scores, 95))
    np.testing.assert_array_equal(detector.labels_, (scores > detector.threshold_).astype(int))
    assert detector.labels_.mean() == pytest.approx(0.05, abs=0.01)
    assert set(np.unique(detector.labels_)) == {0, 1}
    np.testing.assert_array_equal(detector.predict(train), detector.labels_)
    test = toy["test"]
    test_scores = detector.decision_function(test)
    np.testing.assert_array_equal(detector.predict(test), (test_scores > detector.threshold_).astype(int))
    proba = detector.predict_proba(test)
    assert proba.shape == (len(test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba >= 0).all() and (proba <= 1).all()
    order = np.argsort(test_scores)
    assert (np.diff(proba[order, 1]) >= 0).all()  # monotone in the score


def test_detector_is_an_autoencoder_and_pickles(detector, toy) -> None:
    test = toy["test"]
    assert detector.transform(test).shape == (len(test), 2)
    restored = pickle.loads(pickle.dumps(detector))
    np.testing.assert_array_equal(restored.decision_function(test), detector.decision_function(test))
    fresh = clone(detector)
    assert fresh.get_params()["contamination"] == 0.05 and not hasattr(fresh, "threshold_")


@pytest.mark.parametrize("contamination", [0, 0.7, -0.1, "a lot", True])
def test_bad_contamination(contamination) -> None:
    with pytest.raises(ValueError, match=r"contamination must be a number in \(0, 0.5\]"):
        LpAnomalyDetector(contamination=contamination, **SMALL).fit(np.zeros((20, 3)))


def test_bad_input_names_the_problem(detector) -> None:
    with pytest.raises(ValueError, match="unknown criterion"):
        LpAnomalyDetector(loss="lq:2", **SMALL).fit(np.zeros((20, 3)))
    with pytest.raises(ValueError, match="has 3 features, but LpAnomalyDetector is expecting 16"):
        detector.decision_function(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="infinity"):
        detector.predict(np.full((2, 16), np.inf))
