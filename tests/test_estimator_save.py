"""save(path) / load(path) of LpAutoencoder and LpAnomalyDetector: identical outputs after a round
trip (also for GridSearchCV's best estimator), no pickle in the folder, and bad or tampered
folders as ValueError naming the folder and what to do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV

from lpae import LpAutoencoder
from lpae.anomaly import LpAnomalyDetector
from lpae.data import load

TINY = {"hidden": (16,), "latent": 2, "epochs": 3, "batch_size": 32, "random_state": 0}


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return load("synthetic:n=160,dim=6,latent=2,noise=gaussian,scale=0.3,seed=0").x.astype(np.float64)


def same_outputs(a: LpAutoencoder, b: LpAutoencoder, x: np.ndarray) -> None:
    """Bit-identical outputs of every inference method."""
    for method in ("transform", "residuals", "score_samples"):
        np.testing.assert_array_equal(getattr(a, method)(x), getattr(b, method)(x), err_msg=method)
    codes = a.transform(x)
    np.testing.assert_array_equal(a.inverse_transform(codes), b.inverse_transform(codes))
    np.testing.assert_array_equal(a.transform(x.astype(np.float32)), b.transform(x.astype(np.float32)))


@pytest.mark.parametrize("loss", ["lp:0.5", "student_t:df=learned", "gennorm:p=learned,scale=learned"])
def test_autoencoder_round_trip_gives_identical_outputs(x: np.ndarray, tmp_path: Path, loss: str) -> None:
    original = LpAutoencoder(loss=loss, **TINY).fit(x)
    path = original.save(tmp_path / "ae")
    assert sorted(p.name for p in path.iterdir()) == ["estimator.json", "model.safetensors"]
    loaded = LpAutoencoder.load(path)
    assert type(loaded) is LpAutoencoder
    assert loaded.get_params() == original.get_params()
    for name in (
        "criterion_",
        "calibration_",
        "learned_",
        "n_iter_",
        "best_epoch_",
        "history_",
        "fit_status_",
    ):
        assert getattr(loaded, name) == getattr(original, name), name
    same_outputs(original, loaded, x)
    assert loaded.score(x) == original.score(x)


def test_detector_round_trip_keeps_threshold_scores_and_feature_names(x: np.ndarray, tmp_path: Path) -> None:
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(x.shape[1])])
    original = LpAnomalyDetector(loss="laplace:scale=calibrated", contamination=0.1, **TINY).fit(frame)
    loaded = LpAnomalyDetector.load(original.save(tmp_path / "detector"))
    assert loaded.threshold_ == original.threshold_
    np.testing.assert_array_equal(loaded.decision_scores_, original.decision_scores_)
    np.testing.assert_array_equal(loaded.labels_, original.labels_)
    assert loaded.decision_scores_.dtype == original.decision_scores_.dtype
    np.testing.assert_array_equal(loaded.feature_names_in_, original.feature_names_in_)
    for method in ("decision_function", "predict", "predict_proba", "score_samples", "transform"):
        np.testing.assert_array_equal(getattr(loaded, method)(frame), getattr(original, method)(frame))
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(frame.rename(columns={"f0": "other"}))


def test_grid_search_best_estimator_round_trip(x: np.ndarray, tmp_path: Path) -> None:
    search = GridSearchCV(LpAnomalyDetector(**TINY), {"loss": ["l2", "l1"]}, cv=2).fit(x)
    best = search.best_estimator_
    loaded = LpAnomalyDetector.load(best.save(tmp_path / "best"))
    assert loaded.loss == best.loss
    np.testing.assert_array_equal(loaded.predict(x), best.predict(x))
    np.testing.assert_array_equal(loaded.decision_function(x), best.decision_function(x))
    assert loaded.score(x) == search.score(x)


def test_save_refuses_unfitted_and_existing_folders(x: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not fitted"):
        LpAutoencoder(**TINY).save(tmp_path / "unfitted")
    assert not (tmp_path / "unfitted").exists()
    ae = LpAutoencoder(**TINY).fit(x)
    ae.save(tmp_path / "ae")
    with pytest.raises(ValueError, match="already exists; choose another path or pass overwrite=True"):
        ae.save(tmp_path / "ae")
    ae.save(tmp_path / "ae", overwrite=True)
    assert LpAutoencoder.load(tmp_path / "ae").score(x) == ae.score(x)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_bad_and_tampered_folders(x: np.ndarray, tmp_path: Path) -> None:
    ae = LpAutoencoder(**TINY).fit(x)
    good = ae.save(tmp_path / "good")
    other = LpAutoencoder(**{**TINY, "hidden": (8,)}).fit(x).save(tmp_path / "other")
    detector = LpAnomalyDetector(**TINY).fit(x).save(tmp_path / "detector")

    with pytest.raises(ValueError, match=r"missing: no such estimator folder \(write one with LpAutoencoder"):
        LpAutoencoder.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"not a saved lpae estimator \(missing estimator.json, model"):
        LpAutoencoder.load(tmp_path / "empty")
    with pytest.raises(
        ValueError, match="holds a saved LpAnomalyDetector; load it with LpAnomalyDetector.load"
    ):
        LpAutoencoder.load(detector)
    with pytest.raises(ValueError, match="holds a saved LpAutoencoder; load it with LpAutoencoder.load"):
        LpAnomalyDetector.load(good)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "estimator.json").write_bytes((good / "estimator.json").read_bytes())
    (mixed / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="does not match estimator.json .*do not belong together"):
        LpAutoencoder.load(mixed)
    (mixed / "model.safetensors").write_bytes(b"\x80\x04 not safetensors")
    with pytest.raises(ValueError, match="model.safetensors: not a readable safetensors file"):
        LpAutoencoder.load(mixed)

    config = json.loads((good / "estimator.json").read_text())
    for change, message in (
        ({"format": "pickle"}, "not an lpae estimator file"),
        (
            {"fitted": {**config["fitted"], "criterion_": "lp:-1"}},
            "cannot read .*fit and save the estimator again",
        ),
        ({"params": {**config["params"], "colour": "red"}}, "cannot read"),
        (
            {"fitted": {**config["fitted"], "n_features_in_": 5}},
            r"preprocessing of shape \(6,\) for 5 features",
        ),
    ):
        (mixed / "estimator.json").write_text(json.dumps({**config, **change}))
        (mixed / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes())
        with pytest.raises(ValueError, match=message):
            LpAutoencoder.load(mixed)
    (mixed / "estimator.json").write_text("{not json")
    with pytest.raises(ValueError, match="estimator.json: not readable JSON"):
        LpAutoencoder.load(mixed)
