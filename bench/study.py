"""Study throughput: the quick preset's wall time and runs per minute with 1 and 2 workers.

Each round runs `lpae study PRESET --workers W` as a user would (a fresh process, training,
store writes and the report included) into a fresh folder, alternating the worker counts within
one run; medians over rounds. Last line: RESULT with both wall times, runs per minute and the
speed-up of 2 workers over 1.

    .venv/bin/python bench/study.py                   # quick preset, 1 round each
    .venv/bin/python bench/study.py --rounds 2 --preset full
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
from pathlib import Path

import torch

from lpae.study import Store, load_grid


def one_study(preset: str, workers: int, folder: Path) -> tuple[float, dict[str, int]]:
    out = folder / f"{preset}-w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "lpae",
        "study",
        preset,
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--quiet",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    with Store(out, create=False) as store:
        counts = store.counts()
    shutil.rmtree(out, ignore_errors=True)
    return seconds, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", default="1,2", help="worker counts to alternate")
    args = parser.parse_args()
    torch.set_num_threads(2)
    n_runs = len(load_grid(args.preset).runs)
    counts_of_workers = [int(w) for w in args.workers.split(",")]
    times: dict[int, list[float]] = {w: [] for w in counts_of_workers}
    cores, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
    print(f"preset {args.preset}: {n_runs} runs; cores {cores}; load {load:.1f}")
    with tempfile.TemporaryDirectory(prefix="lpae-bench-study-") as tmp:
        for round_index in range(args.rounds):
            order = counts_of_workers if round_index % 2 == 0 else counts_of_workers[::-1]
            for workers in order:
                seconds, counts = one_study(args.preset, workers, Path(tmp))
                times[workers].append(seconds)
                print(
                    f"round {round_index + 1} workers {workers}: {seconds:.1f} s, "
                    f"{60 * n_runs / seconds:.1f} runs/min, {counts}, load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    medians = {w: statistics.median(t) for w, t in times.items()}
    fields = [f"preset={args.preset}", f"runs={n_runs}"]
    for workers, seconds in medians.items():
        fields += [
            f"w{workers}_seconds={seconds:.1f}",
            f"w{workers}_runs_per_min={60 * n_runs / seconds:.1f}",
        ]
    if 1 in medians and 2 in medians:
        fields.append(f"speedup_w2_over_w1={medians[1] / medians[2]:.2f}")
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
