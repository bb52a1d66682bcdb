"""Benchmark: LpAnomalyDetector against PyOD's AutoEncoder on one-class anomaly splits.

Splits: the one-class protocol of ``lpae train --normal-classes`` (lpae.protocol) on the built-in
labelled data sets: for each seed, ``lpae.data.split_indices(n, seed, labels)``; the detectors
train on the normal-class rows of the training and validation parts and score every test row;
the test rows of the other classes are the anomalies. Every contestant sees the same rows.

Contestants, alternated within each (data set, seed), the same topology D -> 64 -> 32 -> 64 -> D,
standardised inputs, Adam at lr 1e-3, batch 32, the same number of epochs:

- ``pyod``: ``pyod.models.auto_encoder.AutoEncoder(hidden_neuron_list=[64, 32])`` with its
  defaults otherwise (batch norm, dropout 0.2, weight decay 1e-5); score: squared error;
- ``lpae:<loss>``: ``lpae.LpAnomalyDetector(loss, hidden=(64,), latent=32)`` for lp:2, lp:1 and
  student_t (df learned); score: the calibrated per-sample NLL.

Reported: AUROC (sklearn.metrics.roc_auc_score) per data set, mean and standard deviation over
5 seeds, side by side; median fit + score seconds per contestant. PyOD comes from
``make bench-deps``; without it the lpae contestants run alone, as the output says.

Run from the repository root: ``.venv/bin/python bench/anomaly.py [--seeds 5 --epochs 30]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
import warnings
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from lpae import LpAnomalyDetector
from lpae.data import load, split_indices
from lpae.protocol import normal_rows

torch.set_num_threads(2)

# data set -> normal classes (breast_cancer: 1 = benign); the single-class splits digits 0 and
# wine 0 are separated perfectly by every contestant, so harder ones are used
SPLITS = {"digits": (0, 1, 2, 3, 4), "breast_cancer": (1,), "wine": (1,), "iris": (1,)}
LPAE_LOSSES = ("lp:2", "lp:1", "student_t")

Scorer = Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]


def pyod_scores(train: np.ndarray, test: np.ndarray, seed: int, epochs: int) -> np.ndarray:
    from pyod.models.auto_encoder import AutoEncoder

    detector = AutoEncoder(
        hidden_neuron_list=[64, 32],
        epoch_num=epochs,
        batch_size=32,
        lr=1e-3,
        random_state=seed,
        verbose=0,
        device="cpu",
    )
    detector.fit(train)
    return np.asarray(detector.decision_function(test))


def lpae_scorer(loss: str) -> Scorer:
    def scores(train: np.ndarray, test: np.ndarray, seed: int, epochs: int) -> np.ndarray:
        detector = LpAnomalyDetector(
            loss=loss, hidden=(64,), latent=32, epochs=epochs, batch_size=32, lr=1e-3, random_state=seed
        )
        return detector.fit(train).decision_function(test)

    return scores


def one_class_split(
    name: str, normal: tuple[int, ...], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normal training rows, test rows, test truth: 1 = anomaly) of the one-class protocol."""
    dataset = load(name)
    x, y = dataset.x.astype(np.float64), dataset.y
    assert y is not None
    splits = split_indices(len(x), seed, y)
    train = normal_rows(np.concatenate([splits.train, splits.val]), y, normal)
    truth = (~np.isin(y[splits.test], normal)).astype(int)
    return x[train], x[splits.test], truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    contestants: dict[str, Scorer] = {f"lpae:{loss}": lpae_scorer(loss) for loss in LPAE_LOSSES}
    if importlib.util.find_spec("pyod") is not None:
        contestants = {"pyod": pyod_scores, **contestants}
    else:
        print("PyOD is not installed (make bench-deps): lpae contestants only")
    auroc: dict[tuple[str, str], list[float]] = defaultdict(list)
    seconds: dict[str, list[float]] = defaultdict(list)
    for name, normal in SPLITS.items():
        for seed in range(args.seeds):
            train, test, truth = one_class_split(name, normal, seed)
            order = list(contestants) if seed % 2 == 0 else list(reversed(contestants))
            for contestant in order:
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scores = contestants[contestant](train, test, seed, args.epochs)
                seconds[contestant].append(time.perf_counter() - started)
                auroc[(name, contestant)].append(float(roc_auc_score(truth, scores)))
        print(f"{name} (normal classes {list(normal)}, {len(train)} training rows, {len(test)} test rows):")
        for contestant in contestants:
            values = auroc[(name, contestant)]
            spread = np.std(values, ddof=1) if len(values) > 1 else 0.0
            rounded = [round(v, 4) for v in values]
            print(f"  {contestant:14s} AUROC {np.mean(values):.4f} +- {spread:.4f}  {rounded}")
    print("median seconds per fit + score:")
    for contestant in contestants:
        print(f"  {contestant:14s} {statistics.median(seconds[contestant]):.3f}")
    result = []
    for name in SPLITS:
        for contestant in contestants:
            key = contestant.replace("lpae:", "").replace(":", "")
            result.append(f"{name}_{key}={np.mean(auroc[(name, contestant)]):.4f}")
    if "pyod" in contestants:
        for contestant in contestants:
            if contestant != "pyod":
                diffs = [
                    np.mean(auroc[(name, contestant)]) - np.mean(auroc[(name, "pyod")]) for name in SPLITS
                ]
                key = contestant.replace("lpae:", "").replace(":", "")
                result.append(f"mean_auroc_gain_{key}_vs_pyod={np.mean(diffs):+.4f}")
        ratio = statistics.median(seconds["pyod"]) / statistics.median(seconds["lpae:lp:2"])
        result.append(f"pyod_over_lpae_l2_time={ratio:.2f}")
    else:
        result.append("pyod=absent")
    print("RESULT " + " ".join(result))


if __name__ == "__main__":
    main()
