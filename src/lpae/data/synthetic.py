"""Synthetic data with known ground truth: a noisy low-dimensional manifold, and isotropic clouds.

``synthetic:n=2000,dim=16,latent=2,noise=gaussian,p=1.5,df=3,scale=0.1,outliers=0,seed=0,classes=4``

1. Latent codes: z = c_k + 0.5 e, e ~ N(0, I_latent), around ``classes`` centres c_k ~ N(0, 4 I);
   the label of a sample is its centre k.
2. Clean signal: a smooth nonlinear map of z through random Fourier features,
   s = sin(z W + b) V / sqrt(H), W ~ N(0, I / latent) (latent, H), b ~ U(0, 2 pi), V ~ N(0, 1)
   (H, dim), H = 64, then each feature centred and scaled to unit variance. So the points lie on
   a ``latent``-dimensional curved manifold in R^dim and ``Dataset.clean`` holds s.
3. Noise, independent per element, of the named family and ``scale`` (scipy.stats notation):
   gaussian norm(scale) | laplace laplace(scale) | gennorm gennorm(p, scale), density
   proportional to exp(-|r / scale|^p), whose NLL is the L_p loss | student_t t(df, scale).
   scale = 0 gives noise-free data.
4. Outliers: a fraction ``outliers`` of the rows (chosen at random) is replaced by gross draws
   from N(0, 10^2 I), far off the manifold; ``info["outlier_mask"]`` (N,) marks them.

Manifold, noise and outliers come from three independent streams of one SeedSequence(seed), so
for a fixed seed changing the noise family or scale keeps the same clean signal and labels.

``uniform:n=1000,dim=10,seed=0``: U[0, 1]^dim; ``normal:n=1000,dim=10,seed=0``: N(0, I_dim),
unlabelled, the reference clouds of the distance-concentration analysis (Beyer et al. 1999;
Aggarwal, Hinneburg & Keim 2001).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from lpae.data.dataset import Dataset
from lpae.data.registry import DATASETS
from lpae.spec import Choice, Number, Param

NOISE_FAMILIES = ("gaussian", "laplace", "gennorm", "student_t")
N_FEATURES_HIDDEN = 64
OUTLIER_STD = 10.0
DEFAULT_P, DEFAULT_DF = 1.5, 3.0


def noise_distribution(noise: str, scale: float, p: float, df: float) -> Any:
    """The frozen scipy.stats distribution of one noise element."""
    if noise == "gaussian":
        return stats.norm(scale=scale)
    if noise == "laplace":
        return stats.laplace(scale=scale)
    if noise == "gennorm":
        return stats.gennorm(p, scale=scale)
    return stats.t(df, scale=scale)


def manifold(
    rng: np.random.Generator, n: int, dim: int, latent: int, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Clean signal (n, dim), unit variance per feature, and cluster labels (n,)."""
    centres = 2.0 * rng.standard_normal((classes, latent))  # (K, latent)
    labels = rng.integers(classes, size=n)
    z = centres[labels] + 0.5 * rng.standard_normal((n, latent))  # (n, latent)
    w = rng.standard_normal((latent, N_FEATURES_HIDDEN)) / np.sqrt(latent)
    b = rng.uniform(0.0, 2 * np.pi, N_FEATURES_HIDDEN)
    v = rng.standard_normal((N_FEATURES_HIDDEN, dim))
    signal = np.sin(z @ w + b) @ v / np.sqrt(N_FEATURES_HIDDEN)  # (n, dim)
    signal = (signal - signal.mean(axis=0)) / signal.std(axis=0)
    return signal, labels.astype(np.int64)


def load_synthetic(
    n: int,
    dim: int,
    latent: int,
    noise: str,
    p: float,
    df: float,
    scale: float,
    outliers: float,
    seed: int,
    classes: int,
) -> Dataset:
    if latent > dim:
        raise ValueError(f"synthetic: latent={latent} must not exceed dim={dim}")
    if p != DEFAULT_P and noise != "gennorm":
        raise ValueError(f"synthetic: p={p:g} applies only to noise=gennorm (got noise={noise})")
    if df != DEFAULT_DF and noise != "student_t":
        raise ValueError(f"synthetic: df={df:g} applies only to noise=student_t (got noise={noise})")
    rng_manifold, rng_noise, rng_outliers = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    clean, labels = manifold(rng_manifold, n, dim, latent, classes)
    if scale > 0:
        x = clean + noise_distribution(noise, scale, p, df).rvs(size=(n, dim), random_state=rng_noise)
    else:
        x = clean.copy()
    mask = np.zeros(n, dtype=bool)
    n_outliers = int(round(outliers * n))
    if n_outliers:
        rows = rng_outliers.choice(n, size=n_outliers, replace=False)
        mask[rows] = True
        x[rows] = OUTLIER_STD * rng_outliers.standard_normal((n_outliers, dim))
    info = {
        "noise": noise,
        "scale": scale,
        "p": p if noise == "gennorm" else None,
        "df": df if noise == "student_t" else None,
        "latent": latent,
        "outliers": outliers,
        "outlier_mask": mask,
        "seed": seed,
    }
    return Dataset("synthetic", x, labels, clean=clean, kind="tabular", info=info)


def load_uniform(n: int, dim: int, seed: int) -> Dataset:
    x = np.random.default_rng(seed).uniform(0.0, 1.0, (n, dim))
    return Dataset("uniform", x, None, kind="tabular", info={"distribution": "U[0,1]^dim", "seed": seed})


def load_normal(n: int, dim: int, seed: int) -> Dataset:
    x = np.random.default_rng(seed).standard_normal((n, dim))
    return Dataset("normal", x, None, kind="tabular", info={"distribution": "N(0, I)", "seed": seed})


def count(default: int, minimum: int, what: str, name: str) -> Param:
    return Param(name, Number(low=minimum, low_open=False, integer=True), default, what)


SEED = count(0, 0, "random seed", "seed")
POSITIVE = Number(low=0)

DATASETS.register(
    "synthetic",
    load_synthetic,
    params=[
        count(2000, 3, "samples", "n"),
        count(16, 1, "ambient dimension", "dim"),
        count(2, 1, "manifold dimension", "latent"),
        Param("noise", Choice(NOISE_FAMILIES), "gaussian", "noise family"),
        Param("p", POSITIVE, DEFAULT_P, "gennorm shape"),
        Param("df", POSITIVE, DEFAULT_DF, "student_t degrees of freedom"),
        Param("scale", Number(low=0, low_open=False), 0.1, "noise scale (signal has unit variance)"),
        Param("outliers", Number(low=0, low_open=False, high=1), 0.0, "fraction of gross-outlier rows"),
        SEED,
        count(4, 1, "clusters in latent space (the labels)", "classes"),
    ],
    summary="smooth nonlinear latent-dim manifold in dim dimensions + noise of a known family "
    "+ optional gross outliers; clean signal kept; labelled by cluster",
    shape=("dim",),
    kind="tabular",
    labels=True,
    requires=None,
)
for _name, _factory, _what in (
    ("uniform", load_uniform, "uniform cube U[0,1]^dim"),
    ("normal", load_normal, "standard normal N(0, I_dim)"),
):
    DATASETS.register(
        _name,
        _factory,
        params=[count(1000, 3, "samples", "n"), count(10, 1, "dimension", "dim"), SEED],
        summary=f"{_what}, unlabelled (distance-concentration reference)",
        shape=("dim",),
        kind="tabular",
        labels=False,
        requires=None,
    )
