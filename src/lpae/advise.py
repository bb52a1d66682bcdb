"""Which criterion does my data want? A quick, evidence-based first answer: ``advise(data)``.

Steps (each number lands in the returned dict, each conclusion in ``reasons``):

1. Split the data (lpae.data.split_indices) and train two quick autoencoders with the same
   architecture (:class:`lpae.estimator.LpAutoencoder`, standardised features): ``lp:2`` and
   ``gennorm:p=learned``. Size: one hidden layer of clip(2 D, 32, 256) units, a code of
   clip(D // 8, 2, 16), about 100,000 sample-epochs each (at most 10,000 training rows).
2. Fit the held-out residuals r = x_hat - x of the gennorm:p=learned model (the more flexible
   one): shapes ``residual_gennorm_p`` and ``residual_t_df`` by scipy.stats.gennorm.fit and
   t.fit with loc 0 on the per-feature scaled residuals (lpae.metrics.residual_shape, the same
   keys ``lpae eval`` reports), then the NLL of Gaussian, Laplace, generalized normal (that p)
   and Student-t (that df) at their ML scales (:func:`lpae.criteria.calibrated_nll`). On
   quantized data (lpae.data.quantization) the families are scored by the probabilities of the
   values' bins instead, with the generalized normal's p and every scale fitted by maximising
   them (lpae.advise_fits), and p is that fit's shape: a continuous density rewards residuals
   that sit on the lattice (on digits it read p = 0.49 and recommended lp:0.5, whose own model
   was the worst on RMSE and probe accuracy). ``outlier_fraction`` is the share of
   held-out rows that are gross outliers: rows whose residual RMS lies beyond Tukey's far-out
   fence on the log scale, log RMS > Q3 + 3 (Q3 - Q1) (about 0 for light-tailed noise of any
   family; the share of corrupted rows when whole rows are gross outliers). Also the gain of a
   per-feature scale over one shared scale, log alpha - mean_j log alpha_j (generalized normal
   with the fitted p, alpha_j the ML scale of feature j, alpha^p the mean of alpha_j^p).
3. Relative contrast (RC_k = (Dmax_k - Dmin_k) / Dmin_k, Aggarwal, Hinneburg & Keim 2001) of
   L_0.5, L_1, L_2 distances among up to 1,000 held-out rows, in the data and in the codes, with
   10-nearest-neighbour class agreement when the data have labels (lpae.contrast.analyse).
4. Decide, comparing families by the held-out NLL per element at their ML scale (the per-row
   differences give a mean gap and its standard error):

   - robust (``student_t``) when the Student-t beats the best of Gaussian, Laplace and fitted
     generalized normal by more than 0.005 nats per element with df < 10, or when
     outlier_fraction > 0.02 (gross outliers);
   - otherwise L2 (``lp:2``) or L1 (``lp:1``), whichever of Gaussian and Laplace fits better;
     but when the fitted shape is outside [0.8, 2.5] and beats that family by more than 0.01
     nats per element, ``lp:p`` with p rounded (fractional p for spiky residuals, p > 2 for
     light-tailed ones such as quantisation);
   - a per-feature scale gain above 0.03 nats per element adds
     ``gennorm:p=learned,scale=learned_per_feature`` as the first alternative.

   Strength words for a gap g (nats per element): below 2 standard errors or 0.002 "no real
   difference", < 0.01 "weak", < 0.03 "moderate", else "strong".

Caveat (also in every result): the residuals of an autoencoder mix the noise with the model's
approximation error, and a code wider than the data's manifold partly reconstructs the noise,
which makes residuals look more Gaussian than the noise is. The advice is a starting point for
``lpae train`` and ``lpae study``, whose commands it gives.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lpae import criteria
from lpae.advise_fits import discrete_fits, flat_quantization
from lpae.contrast.data import Features, analyse
from lpae.contrast.distances import k_label
from lpae.criteria import CalibratedNLL, calibrated_nll
from lpae.data import DATASETS, PATH_PARAM, Dataset, is_file_spec, load, split_indices
from lpae.estimator import LpAutoencoder
from lpae.metrics import residual_shape
from lpae.metrics.likelihood import gennorm_nll
from lpae.spec import format_number

MIN_SAMPLES = 30
MAX_TRAIN = 10_000
SAMPLE_EPOCHS = 100_000
MAX_FIT_ELEMENTS = 1_000_000
CONTRAST_POINTS = 1_000
CONTRAST_K = (0.5, 1.0, 2.0)
NEIGHBORS = 10
BOOTSTRAP = 200
FAR_OUT = 3.0
ROBUST_GAP = 0.005
ROBUST_MAX_DF = 10.0
GROSS_OUTLIER_SHARE = 0.02
FEATURE_SCALE_GAP = 0.03
LP_GAP = 0.01
LP_RANGE = (0.8, 2.5)
MODELS = ("lp:2", "gennorm:p=learned")
BIN_NOTE = " (quantized data: likelihoods of the bins)"
PER_FEATURE = "gennorm:p=learned,scale=learned_per_feature"
CAVEAT = (
    "Residuals mix the noise with the model's approximation error, and a quick model partly "
    "reconstructs noise, which makes residuals look more Gaussian than the noise is: confirm with "
    "the commands below."
)
RECOMMENDATIONS = {  # family -> (recommended, alternatives)
    "L2": ("lp:2", ["gaussian", "gennorm:p=learned"]),
    "L1": ("lp:1", ["laplace", "gennorm:p=learned", "huber"]),
    "robust": ("student_t:df=learned", ["barron_nll:alpha=learned", "cauchy", "lp:1"]),
}


def strength(gap: float, se: float) -> str:
    """Plain words for a log-likelihood gap in nats per element (module docstring)."""
    if gap < max(2.0 * se, 0.002):
        return "no real difference"
    if gap < 0.01:
        return "weak"
    if gap < 0.03:
        return "moderate"
    return "strong"


def architecture(n_features: int, n_train: int, epochs: int | None) -> dict[str, Any]:
    hidden = int(np.clip(2 * n_features, 32, 256))
    latent = int(np.clip(n_features // 8, 2, 16))
    if epochs is None:
        epochs = int(np.clip(math.ceil(SAMPLE_EPOCHS / n_train), 5, 100))
    return {
        "hidden": (hidden,),
        "latent": latent,
        "epochs": epochs,
        "batch_size": 64 if n_train < 5000 else 128,
        "lr": 2e-3,
    }


def row_nll(residual: np.ndarray, fit: CalibratedNLL) -> np.ndarray:
    """NLL per element of each row (N,) under a fitted family at its fitted scale."""
    separator = "," if ":" in fit.family else ":"
    criterion = criteria.build(f"{fit.family}{separator}scale={format_number(fit.scale)}").double()
    r = torch.from_numpy(residual.astype(np.float64))
    with torch.no_grad():
        return (criterion(torch.zeros_like(r), r) / r.shape[1]).numpy()


def gap(worse: np.ndarray, better: np.ndarray) -> tuple[float, float]:
    """Mean per-row NLL difference (nats per element) and its standard error."""
    diff = worse - better
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.inf
    return float(diff.mean()), se


def outlier_share(residual: np.ndarray) -> float:
    """Share of rows whose residual RMS is beyond Tukey's far-out fence on the log scale."""
    rms = np.sqrt(np.mean(residual**2, axis=1))  # (N,)
    log_rms = np.log(np.maximum(rms, np.finfo(np.float64).tiny))
    q1, q3 = np.quantile(log_rms, [0.25, 0.75])
    return float(np.mean(log_rms > q3 + FAR_OUT * (q3 - q1)))


def feature_scale_gap(residual: np.ndarray, p: float) -> float:
    """Nats per element a per-feature ML scale would gain over one shared scale (gennorm of shape p).

    alpha_j^p = p mean_i |r_ij|^p per feature, alpha^p = mean_j alpha_j^p shared; the gain is
    log alpha - mean_j log alpha_j >= 0 (Jensen). Features with alpha_j below 1e-3 alpha count
    at that floor, so a never-wrong constant feature cannot make the gain infinite.
    """
    alpha_p = p * np.mean(np.abs(residual) ** p, axis=0)  # (D,)
    shared = float(np.mean(alpha_p)) ** (1.0 / p)
    if shared == 0:
        return 0.0
    per_feature = np.maximum(alpha_p ** (1.0 / p), 1e-3 * shared)
    return float(math.log(shared) - np.mean(np.log(per_feature)))


def fit_residuals(residual: np.ndarray, bins: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Family fits of the residuals (N, D): their CalibratedNLL, per-row NLLs, shapes, outliers.
    With ``bins`` (each element's bin as offsets from x) on quantized features, the families are
    fitted and scored by bin probabilities (lpae.advise_fits) and p is that fit's shape."""
    flat = residual.ravel()
    shape = residual_shape(residual)  # per-feature scaled, as lpae eval reports them
    if not shape:
        raise ValueError("advise: every held-out residual is 0; there is no noise to fit")
    p, df = shape["residual_gennorm_p"], shape["residual_t_df"]
    if bins is not None and (bins[1] > bins[0]).any():
        start = calibrated_nll(flat, f"gennorm:p={format_number(p)}")
        fits, rows, p = discrete_fits(residual, bins, p, start.scale, df)
    else:
        fits = {
            "gaussian": calibrated_nll(flat, "gaussian"),
            "laplace": calibrated_nll(flat, "laplace"),
            "gennorm": calibrated_nll(flat, f"gennorm:p={format_number(p)}"),
            "student_t": calibrated_nll(flat, f"student_t:df={format_number(df)}"),
        }
        rows = {name: row_nll(residual, fit) for name, fit in fits.items()}
    return {
        "fits": fits,
        "rows": rows,
        "binned": bins is not None and bool((bins[1] > bins[0]).any()),
        "p": p,
        "df": df,
        "outlier_fraction": outlier_share(residual),
        "feature_scale_gap": feature_scale_gap(residual, p),
    }


def heldout_nll(residual: np.ndarray, bins: tuple[np.ndarray, np.ndarray] | None) -> float:
    """The yardstick of ``lpae eval`` in nats per element: calibrated generalized normal, bin
    probabilities on quantized features (lpae.metrics.likelihood.gennorm_nll)."""
    if bins is None:
        return calibrated_nll(residual, "gennorm").nll
    return float(gennorm_nll(residual, bins)["nll_gennorm_bpd"] * math.log(2.0))


def describe_df(df: float) -> str:
    if df > 100:
        return f"df = {df:.3g} (tails as light as a Gaussian's)"
    return f"df = {df:.2f} ({'heavy' if df < ROBUST_MAX_DF else 'moderate'} tails)"


def decide(found: dict[str, Any]) -> tuple[str, str, list[str]]:
    """(family, strength, reasons) from the residual fits (module docstring, step 4)."""
    rows, p, df, outliers = found["rows"], found["p"], found["df"], found["outlier_fraction"]
    light = min(("gaussian", "laplace", "gennorm"), key=lambda name: float(rows[name].mean()))
    t_gap, t_se = gap(rows[light], rows["student_t"])
    l1_gap, l1_se = gap(rows["gaussian"], rows["laplace"])  # > 0: Laplace fits better
    l1_words = strength(abs(l1_gap), l1_se)
    note = BIN_NOTE if found["binned"] else ""
    reasons = [
        f"The held-out residuals have generalized-normal shape p = {p:.2f}{note} "
        "(2 is Gaussian, 1 is "
        f"Laplace); the {'Laplace' if l1_gap > 0 else 'Gaussian'} fit beats the "
        f"{'Gaussian' if l1_gap > 0 else 'Laplace'} one by {abs(l1_gap):.4f} +- {l1_se:.4f} nats per "
        f"element ({l1_words}).",
        f"A Student-t fit gives {describe_df(df)}; it fits {'better' if t_gap > 0 else 'worse'} than the "
        f"best light-tailed fit ({light}) by {abs(t_gap):.4f} +- {t_se:.4f} nats per element "
        f"({strength(abs(t_gap), t_se)}).",
        f"{100 * outliers:.3g}% of held-out rows are gross outliers (residual RMS beyond Tukey's "
        "far-out fence on the log scale; noise of any light-tailed family gives about 0).",
    ]
    scale_gap = found["feature_scale_gap"]
    if scale_gap > FEATURE_SCALE_GAP:
        reasons.append(
            f"Residual scales differ between features: a per-feature scale would fit {scale_gap:.3f} nats "
            f"per element better than one shared scale ({strength(scale_gap, 0.0)}); consider "
            "scale=learned_per_feature."
        )
    heavy = t_gap > ROBUST_GAP and df < ROBUST_MAX_DF
    if heavy or outliers > GROSS_OUTLIER_SHARE:
        why = "heavy tails" if heavy else f"gross outliers ({100 * outliers:.3g}% of rows)"
        reasons.append(f"Verdict: {why} call for a robust criterion (a Student-t decoder learns its df).")
        words = strength(t_gap, t_se)
        if not heavy and words in ("no real difference", "weak"):
            words = "moderate"  # the outlier share alone decided
        return "robust", words, reasons
    family = "L1" if l1_gap > 0 else "L2"
    nearest = "laplace" if family == "L1" else "gaussian"
    p_gap, p_se = gap(rows[nearest], rows["gennorm"])
    if not LP_RANGE[0] <= p <= LP_RANGE[1] and p_gap > LP_GAP:
        reasons.append(
            f"Verdict: the fitted shape p = {p:.2f} beats the {family} family by {p_gap:.4f} nats per "
            f"element ({strength(p_gap, p_se)}): an L_p loss with that p."
        )
        return "Lp", strength(p_gap, p_se), reasons
    if l1_words == "no real difference":
        reasons.append(f"Verdict: the {family} family, but L1 and L2 fit these residuals about equally well.")
    else:
        reasons.append(f"Verdict: the {family} family.")
    return family, l1_words, reasons


def recommendation(family: str, p: float) -> tuple[str, list[str]]:
    if family == "Lp":
        step = 0.1 if p < 1 else 0.5
        p_round = max(step, round(p / step) * step)
        near = "lp:1" if p < 1 else "lp:2"
        return f"lp:{format_number(round(p_round, 2))}", [near, "gennorm:p=learned", "student_t:df=learned"]
    recommended, alternatives = RECOMMENDATIONS[family]
    return recommended, list(alternatives)


def contrast_summary(analysis: dict[str, Any]) -> dict[str, Any]:
    """k -> relative contrast (and class agreement) from a lpae.contrast report."""
    summary: dict[str, Any] = {
        "n_points": analysis["n_points"],
        "n_features": analysis["n_features"],
        "rel_contrast": {k_label(row["k"]): row["rel_contrast"] for row in analysis["rows"]},
    }
    if "agreement" in analysis:
        summary["knn_agreement"] = {k_label(row["k"]): row["fraction"] for row in analysis["agreement"]}
        summary["significant_differences"] = [
            row["summary"] for row in analysis["comparisons"] if row["significant"]
        ]
    return summary


def contrast_reason(where: str, summary: dict[str, Any]) -> str:
    rc = summary["rel_contrast"]
    text = (
        f"Relative contrast in the {where} ({summary['n_points']} points, {summary['n_features']} "
        f"dimensions): L0.5 {rc['L0.5']:.3g}, L1 {rc['L1']:.3g}, L2 {rc['L2']:.3g}"
    )
    if rc["L2"]:
        text += f" (L0.5 keeps {rc['L0.5'] / rc['L2']:.2f}x the contrast of L2)"
    if "knn_agreement" in summary:
        agree = summary["knn_agreement"]
        text += (
            f"; {NEIGHBORS}-NN class agreement L0.5 {agree['L0.5']:.3f}, L1 {agree['L1']:.3f}, "
            f"L2 {agree['L2']:.3f}"
        )
        significant = summary["significant_differences"]
        text += "; " + ("; ".join(significant) if significant else "no significant difference between k")
    return text + "."


def study_grid(spec: str, criteria_specs: list[str], arch: dict[str, Any]) -> str:
    """A TOML grid for ``lpae study`` that compares the candidates over 3 seeds (a data file by
    its absolute path, so the grid runs wherever it is written: grids resolve relative paths
    against their own folder)."""
    if is_file_spec(spec):
        path, colon, rest = spec.partition(":")
        spec = str(Path(path.strip()).expanduser().resolve()) + colon + rest
    else:
        entry, values = DATASETS.resolve(spec)
        if values.get(PATH_PARAM):  # a local copy of a set's files (cifar10:path=DIR)
            folder = str(Path(values[PATH_PARAM]).expanduser().resolve())
            spec = DATASETS.canonical(entry.name, {**values, PATH_PARAM: folder})
    listed = ", ".join(f'"{c}"' for c in criteria_specs)
    return (
        'name = "advise"\n'
        "seeds = [0, 1, 2]\n"
        f"criteria = [{listed}]\n"
        f"data = [{json_string(spec)}]\n\n"
        "[[models]]\n"
        'model = "ae"\n'
        f"hidden = [{arch['hidden'][0]}]\n"
        f"latent = {arch['latent']}\n\n"
        "[train]\n"
        f"epochs = {max(arch['epochs'], 30)}\n"
    )


def json_string(text: str) -> str:
    """A TOML basic string (the same escapes as JSON)."""
    return json.dumps(text)


def unique(specs: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for spec in specs:
        seen.setdefault(criteria.normalize(spec), None)
    return list(seen)


def check_arguments(seed: Any, epochs: Any, max_train: Any) -> None:
    for name, value, low in (("seed", seed, 0), ("max_train", max_train, MIN_SAMPLES)):
        if name == "max_train" and value is None:
            continue  # every training row
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"advise: {name} must be an integer >= {low}, got {value!r}")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"advise: epochs must be a positive integer or None (automatic), got {epochs!r}")


def subset_note(rows: dict[str, list[int]]) -> str | None:
    """One line saying which rows advise used when it subsampled any (None otherwise)."""
    (train, n_train), (heldout, n_heldout), (contrast, _) = rows["train"], rows["heldout"], rows["contrast"]
    if train == n_train and heldout == n_heldout and contrast == heldout:
        return None
    return (
        f"advise: quick models trained on a seeded {train:,} of {n_train:,} training rows (--max-train N "
        f"or all for more), residuals fitted on {heldout:,} of {n_heldout:,} held-out rows, distance "
        f"contrast on {contrast:,} of them"
    )


def as_dataset(data: str | Dataset) -> tuple[str, Dataset]:
    if isinstance(data, Dataset):
        return data.name, data
    if not isinstance(data, str):
        raise TypeError(f"advise: data must be a data set spec (str) or a Dataset, got {type(data).__name__}")
    return data, load(data)


def advise(
    data: str | Dataset,
    seed: int = 0,
    epochs: int | None = None,
    max_train: int | None = MAX_TRAIN,
    grid_path: str = "advise-grid.toml",
) -> dict[str, Any]:
    """Recommend a criterion for ``data`` (a spec such as ``"digits"`` or a Dataset); see the module
    docstring. ``max_train``: the most training rows of the quick models (None: every row).
    Returns a JSON-ready dict with ``recommended``, ``alternatives``, ``reasons``,
    ``residual_gennorm_p``, ``residual_t_df``, ``outlier_fraction`` and the evidence behind them;
    ``rows`` (rows used and available: train, heldout, contrast) and ``note`` (one line saying
    what was subsampled, None when nothing was)."""
    started = time.perf_counter()
    check_arguments(seed, epochs, max_train)
    spec, dataset = as_dataset(data)
    x = dataset.x.reshape(len(dataset.x), -1)  # (N, D): images are flattened
    n_samples, n_features = x.shape
    if n_samples < MIN_SAMPLES:
        raise ValueError(f"advise: {spec!r} has {n_samples} samples; it needs at least {MIN_SAMPLES}")
    if not np.isfinite(x).all():
        raise ValueError(f"advise: {spec!r} contains NaN or infinite values (for files, use :nan=drop)")
    rng = np.random.default_rng(seed)
    splits = split_indices(n_samples, seed, dataset.y, test_rows=dataset.test_rows)
    train = np.concatenate([splits.train, splits.val])
    n_train, n_heldout = len(train), len(splits.test)
    if max_train is not None and len(train) > max_train:
        train = np.sort(rng.choice(train, max_train, replace=False))
    test = splits.test
    max_rows = max(MIN_SAMPLES, MAX_FIT_ELEMENTS // n_features)
    if len(test) > max_rows:
        test = np.sort(rng.choice(test, max_rows, replace=False))
    arch = architecture(n_features, len(train), epochs)
    models: dict[str, Any] = {}
    fitted: dict[str, LpAutoencoder] = {}
    lattice = flat_quantization(dataset.quantization)
    bins: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    for loss in MODELS:
        tic = time.perf_counter()
        estimator = LpAutoencoder(loss=loss, preprocess="standard", random_state=seed, **arch)
        fitted[loss] = estimator.fit(x[train])
        residual = estimator.residuals(x[test]).astype(np.float64)
        model_lattice = estimator.preprocessor_.model_quantization(lattice)
        bins[loss] = (
            None
            if model_lattice is None
            else model_lattice.bin_offsets(estimator.preprocessor_.transform(x[test]))
        )
        models[loss] = {
            "status": estimator.fit_status_,
            "epochs": estimator.n_iter_,
            "seconds": round(time.perf_counter() - tic, 3),
            "learned": estimator.learned_,
            "heldout_nll_gennorm": heldout_nll(residual, bins[loss]),
            "heldout_recon_l2": float(np.sqrt(np.mean(residual**2))),
        }
    flexible = fitted[MODELS[1]]
    found = fit_residuals(flexible.residuals(x[test]).astype(np.float64), bins[MODELS[1]])
    family, words, reasons = decide(found)
    recommended, alternatives = recommendation(family, found["p"])
    if found["feature_scale_gap"] > FEATURE_SCALE_GAP:
        alternatives.insert(0, PER_FEATURE)
    learned_p = models[MODELS[1]]["learned"].get("learned_p")
    if learned_p is not None:
        reasons.append(f"The gennorm:p=learned autoencoder itself learned p = {learned_p:.2f}.")
    nll_l2, nll_g = (models[m]["heldout_nll_gennorm"] for m in MODELS)
    reasons.append(
        f"Held-out NLL (generalized normal, fitted shape, nats per element{BIN_NOTE if lattice else ''}): "
        "lp:2 autoencoder "
        f"{nll_l2:.4f}, gennorm:p=learned autoencoder {nll_g:.4f} (lower is better)."
    )
    points = test[: min(len(test), CONTRAST_POINTS)]
    labels = None if dataset.y is None else dataset.y[points]
    n_neighbors = NEIGHBORS if labels is not None and len(np.unique(labels)) > 1 else 0
    contrast: dict[str, Any] = {}
    if len(points) > NEIGHBORS + 1:
        for where, values in (
            ("data", flexible.preprocessor_.transform(x[points])),
            ("latent", flexible.transform(x[points])),
        ):
            report = analyse(Features(where, values, labels), CONTRAST_K, n_neighbors, BOOTSTRAP, seed).report
            contrast[where] = contrast_summary(report)
            reasons.append(contrast_reason(f"{where} space", contrast[where]))
    rows = {
        "train": [len(train), n_train],
        "heldout": [len(test), n_heldout],
        "contrast": [len(points), len(test)],
    }
    recommended = criteria.normalize(recommended)
    alternatives = [a for a in unique(alternatives) if a != recommended]
    candidates = unique([recommended, *alternatives, "lp:2"])
    slug = recommended.replace(":", "_").replace("=", "-").replace(",", "_")
    hidden = ",".join(str(h) for h in arch["hidden"])
    return {
        "data": spec,
        "n_samples": n_samples,
        "n_features": n_features,
        "seed": seed,
        "recommended": recommended,
        "family": family,
        "strength": words,
        "alternatives": alternatives,
        "reasons": reasons,
        "caveat": CAVEAT,
        "residual_gennorm_p": found["p"],
        "residual_t_df": found["df"],
        "outlier_fraction": found["outlier_fraction"],
        "residual_fits": {name: fit.to_json() for name, fit in found["fits"].items()},
        "models": models,
        "architecture": {**arch, "hidden": list(arch["hidden"])},
        "contrast": contrast,
        "commands": {
            "train": (
                f"lpae train --data {shlex.quote(spec)} --loss {recommended} --hidden {hidden} "
                f"--latent {arch['latent']} --epochs {max(arch['epochs'], 30)} --out runs/advise-{slug}"
            ),
            "study": f"lpae study {grid_path} --out studies/advise",
        },
        "study_grid": study_grid(spec, candidates, arch),
        "rows": rows,
        "note": subset_note(rows),
        "seconds": round(time.perf_counter() - started, 3),
    }
