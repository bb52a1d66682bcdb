"""Synthetic data: reproducible per seed, the noise follows the named family (scipy.stats fits),
the clean signal is a low-dimensional curved manifold, outliers are where they are said to be."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.neighbors import NearestNeighbors

from lpae.data import load


def noise_of(spec: str) -> np.ndarray:
    dataset = load(spec)
    assert dataset.clean is not None
    return (dataset.x - dataset.clean).astype(np.float64).ravel()


def test_reproducible_per_seed_and_seeds_differ() -> None:
    a, b = load("synthetic:n=300,dim=6,seed=3"), load("synthetic:n=300,dim=6,seed=3")
    assert np.array_equal(a.x, b.x) and np.array_equal(a.clean, b.clean) and np.array_equal(a.y, b.y)
    c = load("synthetic:n=300,dim=6,seed=4")
    assert not np.allclose(a.x, c.x)
    for spec in ("uniform:n=50,dim=3,seed=1", "normal:n=50,dim=3,seed=1"):
        assert np.array_equal(load(spec).x, load(spec).x)
        assert not np.array_equal(load(spec).x, load(spec.replace("seed=1", "seed=2")).x)


def test_same_seed_same_signal_whatever_the_noise() -> None:
    gaussian = load("synthetic:n=200,dim=5,seed=7")
    student = load("synthetic:n=200,dim=5,seed=7,noise=student_t,df=2,scale=0.3")
    assert np.array_equal(gaussian.clean, student.clean) and np.array_equal(gaussian.y, student.y)
    assert not np.allclose(gaussian.x, student.x)


N_NOISE = "n=4000,dim=8"  # 32,000 noise values per family


@pytest.mark.parametrize(
    ("noise", "beta"),
    [("gaussian", 2.0), ("laplace", 1.0), ("gennorm,p=0.7", 0.7), ("gennorm,p=3", 3.0)],
)
def test_noise_shape_by_generalized_normal_fit(noise: str, beta: float) -> None:
    """A gennorm fit (location fixed at 0) recovers the family's shape: 2 Gaussian, 1 Laplace, p."""
    residual = noise_of(f"synthetic:{N_NOISE},noise={noise},scale=0.2,seed=1")
    beta_hat, _, _ = stats.gennorm.fit(residual, floc=0)
    assert beta_hat == pytest.approx(beta, rel=0.06)
    # Scale at the true shape, closed-form MLE alpha = (beta mean|r|^beta)^(1/beta) (REFERENCES.md);
    # gennorm alpha: Gaussian sigma = alpha / sqrt 2, Laplace b = alpha, gennorm alpha = scale
    alpha_hat = (beta * np.mean(np.abs(residual) ** beta)) ** (1 / beta)
    expected_alpha = 0.2 * np.sqrt(2) if noise == "gaussian" else 0.2
    assert alpha_hat == pytest.approx(expected_alpha, rel=0.03)


@pytest.mark.parametrize("df", [2.0, 5.0])
def test_student_t_noise_degrees_of_freedom(df: float) -> None:
    residual = noise_of(f"synthetic:{N_NOISE},noise=student_t,df={df:g},scale=0.1,seed=2")
    df_hat, _, scale_hat = stats.t.fit(residual, floc=0)
    assert df_hat == pytest.approx(df, rel=0.15)
    assert scale_hat == pytest.approx(0.1, rel=0.05)
    assert stats.kstest(residual, stats.t(df, scale=0.1).cdf).pvalue > 1e-3


def test_noise_passes_ks_against_its_family_and_fails_against_another() -> None:
    laplace = noise_of(f"synthetic:{N_NOISE},noise=laplace,scale=0.1,seed=5")
    assert stats.kstest(laplace, stats.laplace(scale=0.1).cdf).pvalue > 1e-3
    same_variance_normal = stats.norm(scale=0.1 * np.sqrt(2))
    assert stats.kstest(laplace, same_variance_normal.cdf).pvalue < 1e-6


def test_clean_signal_is_a_curved_low_dimensional_manifold() -> None:
    """Locally (30 neighbours) 2 principal directions explain the clean signal; globally they don't."""
    clean = load("synthetic:n=3000,dim=16,latent=2,scale=0").x.astype(np.float64)
    assert clean.std(axis=0) == pytest.approx(np.ones(16), rel=1e-4)

    def top_share(points: np.ndarray, k: int) -> float:
        values = np.linalg.svd(points - points.mean(axis=0), compute_uv=False) ** 2
        return float(values[:k].sum() / values.sum())

    _, neighbours = NearestNeighbors(n_neighbors=30).fit(clean).kneighbors(clean[:50])
    local = np.median([top_share(clean[index], 2) for index in neighbours])
    assert local > 0.97
    assert top_share(clean, 2) < 0.9  # nonlinear: a plane does not hold it


def test_outliers_fraction_and_mask() -> None:
    dataset = load("synthetic:n=1000,dim=10,outliers=0.05,scale=0.1,seed=0")
    mask = dataset.info["outlier_mask"]
    assert mask.sum() == 50
    residual = np.abs(dataset.x - dataset.clean).max(axis=1)
    assert residual[~mask].max() < 1.0  # Gaussian noise of scale 0.1 stays within 10 sigma
    assert np.median(residual[mask]) > 10.0
    part = dataset.subset(np.arange(100, 300))
    assert np.array_equal(part.info["outlier_mask"], mask[100:300])


def test_labels_are_cluster_ids() -> None:
    dataset = load("synthetic:n=500,classes=3")
    assert sorted(np.unique(dataset.y)) == [0, 1, 2]


def test_reference_clouds() -> None:
    uniform = load("uniform:n=20000,dim=4").x
    assert uniform.min() >= 0 and uniform.max() <= 1
    assert uniform.mean(axis=0) == pytest.approx(np.full(4, 0.5), abs=0.01)
    assert uniform.var(axis=0) == pytest.approx(np.full(4, 1 / 12), rel=0.03)
    normal = load("normal:n=20000,dim=4").x
    assert normal.mean(axis=0) == pytest.approx(np.zeros(4), abs=0.03)
    assert normal.std(axis=0) == pytest.approx(np.ones(4), rel=0.03)
    assert load("uniform").shape == (10,) and load("normal:dim=3").y is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("synthetic:dim=3,latent=5", "latent=5 must not exceed dim=3"),
        ("synthetic:p=1.2", "p=1.2 applies only to noise=gennorm"),
        ("synthetic:df=4", "df=4 applies only to noise=student_t"),
        (
            "synthetic:noise=cauchy",
            "noise=cauchy: 'cauchy' is not one of gaussian, laplace, gennorm, student_t",
        ),
        ("synthetic:outliers=1", "outliers=1"),
        ("synthetic:scale=-1", "scale=-1"),
        ("uniform:n=2", "n=2"),
    ],
)
def test_bad_synthetic_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        load(spec)
    assert message in str(error.value)
