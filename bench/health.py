"""Training-health check: what lpae.study.health adds to a study's report.

On a copy of a finished study folder (the quick preset by default, trained first into a temporary
folder; or --study DIR), each round empties the store's health tables (as after training, before
the first report) and times ``update_health`` (every run reloaded and scored on every own metric
of its comparison), then ``update_health`` again (cached), then the whole report
(``build_report``, health cached). Medians over rounds; wall and CPU seconds (the check runs torch
on one thread, so on a quiet machine the two agree). Last line: RESULT with the times and the
first check's share of the first report after training (report - cached + first). The first
round also loads numba's compiled kernels (under a second), as a study's training already has.

    .venv/bin/python bench/health.py                       # trains the quick preset first
    .venv/bin/python bench/health.py --study studies/quick --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lpae.study import Store
from lpae.study.health import update_health
from lpae.study.report import build_report


def timed(work: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def forget_health(study: Path) -> None:
    with Store(study, create=False) as store, store.transaction() as cursor:
        cursor.execute("DELETE FROM own_metric")
        cursor.execute("DELETE FROM health")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--study", type=Path, help="a finished study folder (default: train the quick preset)"
    )
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lpae-bench-health-") as tmp:
        source = args.study
        if source is None:
            source = Path(tmp) / "quick"
            command = [sys.executable, "-m", "lpae", "study", "quick", "--out", str(source), "--quiet"]
            subprocess.run([*command, "--no-report"], check=True, stdout=subprocess.DEVNULL)
        with Store(source, create=False) as store:
            n_runs = len(store.rows())
        cores, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
        print(f"study {source}: {n_runs} runs; cores {cores}; load {load:.1f}")
        times: dict[str, list[tuple[float, float]]] = {"first": [], "cached": [], "report": []}
        for round_index in range(args.rounds):
            study = Path(tmp) / f"round{round_index}"
            shutil.copytree(source, study)
            forget_health(study)
            times["first"].append(timed(lambda study=study: update_health(study)))
            times["cached"].append(timed(lambda study=study: update_health(study)))
            times["report"].append(timed(lambda study=study: build_report(study)))
            shutil.rmtree(study)
            last = [
                f"{name} {values[-1][0]:.2f} s wall / {values[-1][1]:.2f} s cpu"
                for name, values in times.items()
            ]
            print(f"round {round_index + 1}: " + ", ".join(last), flush=True)
    wall = {name: statistics.median(w for w, _ in values) for name, values in times.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in times.items()}
    fields = [f"runs={n_runs}"]
    for name in times:
        fields += [f"{name}_wall_s={wall[name]:.2f}", f"{name}_cpu_s={cpu[name]:.2f}"]
    # the first report after training: the report with its health computed rather than cached
    first_report = wall["report"] - wall["cached"] + wall["first"]
    fields.append(f"first_share_of_report={wall['first'] / first_report:.2f}")
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
