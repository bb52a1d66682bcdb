"""LpAutoencoder: calibrated log-likelihoods against scipy.stats, Jacobian, Pipeline and GridSearchCV,
pickling and cloning, determinism, and every bad input as a ValueError with a useful message."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from lpae import LpAutoencoder
from lpae.data import load

SMALL = {"hidden": (32,), "latent": 2, "epochs": 15, "batch_size": 32, "lr": 3e-3, "random_state": 0}


def manifold(noise: str, n: int = 400, seed: int = 0) -> np.ndarray:
    """A noisy 2-d curved manifold in 8 dimensions (lpae's synthetic generator)."""
    return load(f"synthetic:n={n},dim=8,latent=2,noise={noise},scale=0.3,seed={seed}").x.astype(np.float64)


@pytest.fixture(scope="module")
def x_gauss() -> np.ndarray:
    return manifold("gaussian")


@pytest.fixture(scope="module")
def fitted_l2(x_gauss: np.ndarray) -> LpAutoencoder:
    return LpAutoencoder(**SMALL).fit(x_gauss)


def working_space(ae: LpAutoencoder, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(z, residual) in the preprocessed space, recomputed from the public pieces."""
    z = ae.preprocessor_.transform(X).astype(np.float64)
    z_hat = ae.preprocessor_.transform(ae.inverse_transform(ae.transform(X)))
    return z, z_hat - z


def log_jacobian(ae: LpAutoencoder) -> float:
    return -float(np.sum(np.log(ae.preprocessor_.scale.astype(np.float64))))


def test_plain_loss_is_scored_as_gennorm_of_the_same_p_at_ml_scale(fitted_l2, x_gauss) -> None:
    ae = fitted_l2
    _, r = working_space(ae, x_gauss)
    np.testing.assert_allclose(ae.residuals(x_gauss), r, atol=1e-5)
    r = ae.residuals(x_gauss)
    alpha = (2 * np.mean(r**2)) ** 0.5  # closed-form ML scale of gennorm(p = 2)
    assert ae.calibration_["method"] == "gennorm"
    assert ae.calibration_["shape"] == 2.0
    assert ae.calibration_["scale"] == pytest.approx(alpha, rel=1e-9)
    expected = stats.gennorm.logpdf(r, 2.0, scale=alpha).sum(axis=1) + log_jacobian(ae)
    np.testing.assert_allclose(ae.score_samples(x_gauss), expected, rtol=1e-9, atol=1e-9)
    assert ae.score(x_gauss) == pytest.approx(float(expected.mean()), rel=1e-9)


def test_fractional_p_uses_its_own_exponent(x_gauss) -> None:
    ae = LpAutoencoder(loss="lp:0.5", **SMALL).fit(x_gauss)
    r = ae.residuals(x_gauss)
    alpha = (0.5 * np.mean(np.abs(r) ** 0.5)) ** 2.0
    assert ae.calibration_["family"].startswith("gennorm:p=0.5,scale=")
    expected = stats.gennorm.logpdf(r, 0.5, scale=alpha).sum(axis=1) + log_jacobian(ae)
    np.testing.assert_allclose(ae.score_samples(x_gauss), expected, rtol=1e-8)


def test_loss_without_exponent_gets_the_ml_shape(x_gauss) -> None:
    ae = LpAutoencoder(loss="huber", **SMALL).fit(x_gauss)
    r = ae.residuals(x_gauss).ravel()
    p = ae.calibration_["shape"]
    # the shape maximises the profile likelihood: scipy's fit with loc 0 agrees
    p_scipy, _, _ = stats.gennorm.fit(r, floc=0)
    assert p == pytest.approx(p_scipy, rel=2e-3)


def test_gaussian_with_learned_scale_is_scored_at_its_ml_sigma(x_gauss) -> None:
    ae = LpAutoencoder(loss="gaussian:scale=learned", **SMALL).fit(x_gauss)
    r = ae.residuals(x_gauss)
    sigma = float(np.sqrt(np.mean(r**2)))
    assert ae.calibration_["method"] == "ml_scale"
    assert ae.calibration_["scale"] == pytest.approx(sigma, rel=1e-6)
    expected = stats.norm.logpdf(r, scale=sigma).sum(axis=1) + log_jacobian(ae)
    np.testing.assert_allclose(ae.score_samples(x_gauss), expected, rtol=1e-6)


def test_student_t_scale_maximises_the_likelihood(x_gauss) -> None:
    ae = LpAutoencoder(loss="student_t:df=3", **SMALL).fit(x_gauss)
    r = ae.residuals(x_gauss)
    s = ae.calibration_["scale"]
    expected = stats.t.logpdf(r, 3, scale=s).sum(axis=1) + log_jacobian(ae)
    np.testing.assert_allclose(ae.score_samples(x_gauss), expected, rtol=1e-6)
    total = stats.t.logpdf(r, 3, scale=s).sum()
    for factor in (0.99, 1.01):
        assert stats.t.logpdf(r, 3, scale=s * factor).sum() < total


def test_score_is_a_density_of_x_in_its_own_units(fitted_l2, x_gauss) -> None:
    """Scaling X by c leaves the model unchanged (standardised input) and shifts log p by -D log c."""
    c = 7.0
    scaled = LpAutoencoder(**SMALL).fit(c * x_gauss)
    shift = fitted_l2.score_samples(x_gauss) - scaled.score_samples(c * x_gauss)
    np.testing.assert_allclose(shift, x_gauss.shape[1] * math.log(c), rtol=1e-4)


def test_codes_and_reconstructions(fitted_l2, x_gauss) -> None:
    ae = fitted_l2
    codes = ae.transform(x_gauss)
    assert codes.shape == (len(x_gauss), 2) and codes.dtype == np.float64
    assert ae.transform(x_gauss.astype(np.float32)).dtype == np.float32
    x_hat = ae.inverse_transform(codes)
    assert x_hat.shape == x_gauss.shape
    # a 2-d code of a 2-d manifold explains most of the variance
    explained = 1 - np.mean((x_hat - x_gauss) ** 2) / np.mean((x_gauss - x_gauss.mean(0)) ** 2)
    assert explained > 0.6
    assert list(ae.get_feature_names_out()) == ["lpautoencoder0", "lpautoencoder1"]
    assert ae.n_features_in_ == 8 and ae.fit_status_ == "done" and ae.n_iter_ == 15


def test_same_seed_same_model_other_seed_other_model(fitted_l2, x_gauss) -> None:
    a = fitted_l2.transform(x_gauss)
    b = LpAutoencoder(**SMALL).fit(x_gauss).transform(x_gauss)
    c = LpAutoencoder(**{**SMALL, "random_state": 1}).fit(x_gauss).transform(x_gauss)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_pickle_and_clone(fitted_l2, x_gauss) -> None:
    restored = pickle.loads(pickle.dumps(fitted_l2))
    np.testing.assert_array_equal(restored.score_samples(x_gauss), fitted_l2.score_samples(x_gauss))
    np.testing.assert_array_equal(restored.transform(x_gauss), fitted_l2.transform(x_gauss))
    fresh = clone(fitted_l2)
    assert fresh.get_params() == fitted_l2.get_params()
    assert not hasattr(fresh, "model_")


def test_pipeline_feeds_a_classifier() -> None:
    digits = load("digits")
    x, y = digits.x.astype(np.float64), digits.y
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("ae", LpAutoencoder(hidden=(64,), latent=8, epochs=10, random_state=0)),
            ("clf", LogisticRegression(max_iter=300)),
        ]
    )
    pipe.fit(x[:1200], y[:1200])
    assert pipe.score(x[1200:], y[1200:]) > 0.7  # ten classes: chance is 0.1


@pytest.mark.slow
def test_grid_search_over_loss_prefers_student_t_under_heavy_tails() -> None:
    """GridSearchCV's default scoring is the held-out calibrated log-likelihood: under Student-t
    noise with 1.5 df the Student-t decoder must beat L2 scored as a Gaussian."""
    x = load("synthetic:n=600,dim=8,latent=2,noise=student_t,df=1.5,scale=0.3,seed=0").x.astype(np.float64)
    search = GridSearchCV(
        Pipeline([("ae", LpAutoencoder(**SMALL))]),
        {"ae__loss": ["l2", "student_t:df=learned"]},
        cv=2,
    )
    search.fit(x)
    results = search.cv_results_
    scores = dict(zip(results["param_ae__loss"], results["mean_test_score"], strict=True))
    assert search.best_params_ == {"ae__loss": "student_t:df=learned"}
    assert scores["student_t:df=learned"] > scores["l2"] + x.shape[1] * 0.05  # nats per sample


def test_divergence_warns_and_keeps_finite_weights() -> None:
    x = np.random.default_rng(0).standard_normal((100, 5))
    with pytest.warns(ConvergenceWarning, match="diverged"):
        ae = LpAutoencoder(lr=1e12, epochs=2, random_state=0).fit(x)
    assert ae.fit_status_ == "diverged"
    assert np.isfinite(ae.score_samples(x)).all()


def test_import_lpae_does_not_import_torch() -> None:
    code = "import sys, lpae; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"loss": "lp:-1"}, "lp:-1"),
        ({"loss": "nosuch"}, "unknown criterion 'nosuch'"),
        ({"loss": 2}, "criterion spec string"),
        ({"preprocess": "zscore"}, "unknown preprocess 'zscore'; allowed: auto, standard, minmax, none"),
        ({"model": "gan"}, "unknown model 'gan'"),
        ({"hidden": (0,)}, "hidden sizes must be positive integers"),
        ({"latent": 0}, "latent size must be a positive integer"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"lr": -1.0}, "learning rate must be a positive number"),
        ({"validation_fraction": 1.5}, r"validation_fraction must be a number in \[0, 1\)"),
        ({"random_state": -3}, "random_state must be a non-negative integer"),
        ({"corruption": "gaussian:std=0.1"}, "corruption applies to model dae only"),
        ({"loss": "cbernoulli", "preprocess": "none"}, "closed interval"),
    ],
)
def test_bad_settings_raise_value_errors(params, message) -> None:
    x = np.random.default_rng(0).normal(3.0, 1.0, (50, 4))
    with pytest.raises((ValueError, TypeError), match=message):
        LpAutoencoder(**{**SMALL, "epochs": 1, **params}).fit(x)


def test_bad_data_raise_value_errors(fitted_l2, x_gauss) -> None:
    with pytest.raises(ValueError, match="NaN"):
        LpAutoencoder(**SMALL).fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="has 3 features, but LpAutoencoder is expecting 8"):
        fitted_l2.transform(x_gauss[:, :3])
    with pytest.raises(ValueError, match="latent codes of 2 columns, got 5"):
        fitted_l2.inverse_transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="Expected 2D array"):
        fitted_l2.score_samples(x_gauss[0])
