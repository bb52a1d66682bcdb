"""Experiment tracking: what `lpae study --track mlflow|tensorboard` adds to a study.

A small grid (digits and iris, 4 criteria, 2 seeds, MLP AEs and VAEs, 5 epochs: 32 runs) is
trained once without tracking (``run_study(..., report=False)``, the baseline, timed). Then each
round logs every finished run of that study folder into a fresh store of each backend in turn,
alternating (lpae.study.tracked.log_runs, the code the runner calls): the time to open the store
(for MLflow the SQLite tables MLflow creates in a new database; TensorBoard has nothing to open)
and the time per logged run (params, history, final metrics, artifacts, and the prior-sample grid
of each VAE on digits). Medians over rounds. Last line: RESULT with those times and each backend's
share of the study: (open + runs x per-run) / training time.

    .venv/bin/python bench/tracking.py --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lpae.study import Store, parse_grid, run_study
from lpae.study.tracked import log_runs
from lpae.tracking import Tracking, open_tracker

GRID = """
name = "bench-tracking"
seeds = [0, 1]
criteria = ["l1", "l2", "huber", "gaussian:scale=calibrated"]
data = ["digits", "iris"]
[[models]]
hidden = [32]
latent = 4
[[models]]
model = "vae"
hidden = [32]
latent = 4
[train]
epochs = 5
checkpoint_every = 0
"""


def log_study(kind: str, study: Path, store_folder: Path) -> tuple[float, float, int]:
    """(open seconds, seconds per logged run, runs logged) into a fresh store in ``store_folder``."""
    with Store(study, create=False) as store:
        rows = [(r.run_id, r.status, r.run_dir) for r in store.rows()]
    tracking = Tracking(kind, str(store_folder / "tb") if kind == "tensorboard" else None)
    start = time.perf_counter()
    # the MLflow store goes in store_folder (its default: inside the output folder)
    tracker = open_tracker(tracking, store_folder, "bench", group="bench")
    opened = time.perf_counter()
    logged = log_runs(tracker, study, "bench", rows)
    done = time.perf_counter()
    tracker.close()
    return opened - start, (done - opened) / max(logged, 1), logged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lpae-bench-tracking-") as tmp:
        study = Path(tmp) / "study"
        start = time.perf_counter()
        result = run_study(parse_grid(GRID, "bench"), study, report=False)
        train_s = time.perf_counter() - start
        n_runs = result.counts["done"] + result.counts["diverged"]
        print(f"trained {n_runs} runs in {train_s:.1f} s (no tracking)")
        times: dict[str, list[tuple[float, float]]] = {"mlflow": [], "tensorboard": []}
        for round_ in range(args.rounds):
            for kind in times:
                folder = Path(tmp) / f"{kind}-{round_}"
                folder.mkdir()
                opened, per_run, logged = log_study(kind, study, folder)
                if logged != n_runs:
                    raise SystemExit(f"{kind}: logged {logged} of {n_runs} runs")
                times[kind].append((opened, per_run))
                print(f"round {round_ + 1} {kind}: open {opened:.2f} s, {per_run * 1000:.0f} ms per run")
    parts = [f"runs={n_runs}", f"train_s={train_s:.1f}"]
    for kind, values in times.items():
        opened = statistics.median(v[0] for v in values)
        per_run = statistics.median(v[1] for v in values)
        share = (opened + n_runs * per_run) / train_s
        parts += [
            f"{kind}_open_s={opened:.2f}",
            f"{kind}_per_run_s={per_run:.3f}",
            f"{kind}_over_train={share:.3f}",
        ]
    print("RESULT " + " ".join(parts))


if __name__ == "__main__":
    main()
