"""Scaling: wall time and peak memory of each command against the rows, and of the report against runs.

Rows: for each size N a labelled 64-feature table (data-N.npz: x float32 (N, 64), a Gaussian
mixture of 10 classes, y its labels) is written once; then, each as a fresh process exactly as a
user types it, ``lpae train --epochs 1`` (training and the evaluation at its end), ``lpae eval``
of that run, ``lpae advise``, ``lpae contrast --data`` (its default subset) and ``lpae report``
of a two-run study on the same file (its training-health cache emptied first, so the report
recomputes it as the first report of a study does).

Runs: fake-but-valid study folders of R runs (4 criteria x R / 4 seeds on synthetic:n=1000,dim=16).
Four runs are trained for real once (``lpae study``); each fake run goes through the real store
API (lpae.study.Store.plan and record, keys from the real grid parser) with the metrics of the
real run of its criterion, every number multiplied by a seeded log-normal factor (fractions kept
in [0, 1]), and a copy of that run's folder (config, weights, history), so the report's
training-health check loads and scores every run as it would after a real study. Then
``lpae report`` twice: cold (the first report: health computed for every run) and warm (cached).

Time is wall-clock (time.perf_counter around the child); peak memory is the child's maximum
resident set size (os.wait4's ru_maxrss). The exponent is the least-squares slope of log time
against log size over all sizes, and between the two largest sizes (``last``): process start-up
(imports, about 3 s) flattens the slope at small sizes, so ``last`` is the one to read for the
asymptotic cost. The machine is shared and noisy: compare figures of the same run.

    .venv/bin/python bench/scaling.py                            # rows 2k,20k,200k; runs 10..10000
    .venv/bin/python bench/scaling.py --quick                    # rows 2k,20k; runs 10,100,1000
    .venv/bin/python bench/scaling.py --rows 2000,20000 --runs none --commands train,eval
    .venv/bin/python bench/scaling.py --train-rows 2000000       # add 2M rows for train alone
    .venv/bin/python bench/scaling.py --advise-epochs 1 --contrast-points 5000   # a busy machine
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from lpae.study import Store, parse_grid
from lpae.study.store import Outcome

COMMANDS = ("train", "eval", "advise", "contrast", "report")
N_FEATURES = 64
N_CLASSES = 10
CRITERIA = ("lp:2", "lp:1", "gennorm:p=learned", "student_t")
RUNS_DATA = "synthetic:n=1000,dim=16"
METRIC_NOISE = 0.05  # sd of the log-normal factor on each fake metric


# --- measuring ------------------------------------------------------------------------------------


def measure(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in GB) of one child process; raises if it fails."""
    started = time.perf_counter()
    with open(cwd / "last.log", "wb") as log:
        child = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        tail = (cwd / "last.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(command)} exited with {child.returncode}:\n{tail}")
    return seconds, usage.ru_maxrss / 2**20  # kB -> GB


def lpae(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "lpae", *arguments]


def exponent(sizes: list[int], seconds: list[float]) -> tuple[float, float]:
    """(slope of log time against log size over all sizes, slope between the two largest)."""
    if len(sizes) < 2:
        return math.nan, math.nan
    log_n, log_t = np.log(sizes), np.log(seconds)
    overall = float(np.polyfit(log_n, log_t, 1)[0])
    last = float((log_t[-1] - log_t[-2]) / (log_n[-1] - log_n[-2]))
    return overall, last


# --- rows -----------------------------------------------------------------------------------------


def write_table(path: Path, n_rows: int, seed: int = 0) -> None:
    """A labelled Gaussian mixture: 10 class centres in 64 dimensions, unit noise, float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, (N_CLASSES, N_FEATURES))
    y = rng.integers(0, N_CLASSES, n_rows)
    x = np.empty((n_rows, N_FEATURES), np.float32)
    for start in range(0, n_rows, 1 << 18):  # in blocks: no float64 copy of the whole table
        stop = min(start + (1 << 18), n_rows)
        x[start:stop] = centres[y[start:stop]] + rng.standard_normal((stop - start, N_FEATURES))
    np.savez(path, x=x, y=y)


def study_grid(data: str, criteria: tuple[str, ...], seeds: int, epochs: int) -> str:
    listed = ", ".join(json.dumps(c) for c in criteria)
    return (
        'name = "scaling"\n'
        f"seeds = {list(range(seeds))}\n"
        f"criteria = [{listed}]\n"
        f"data = [{json.dumps(data)}]\n\n"
        "[train]\n"
        f"epochs = {epochs}\n"
    )


def clear_health(study: Path) -> None:
    """Empty the training-health cache, so the next report computes it as a study's first does."""
    with Store(study, create=False) as store, store.transaction() as cursor:
        cursor.execute("DELETE FROM own_metric")
        cursor.execute("DELETE FROM health")


def rows_commands(
    n_rows: int, folder: Path, commands: tuple[str, ...], advise_epochs: str = "", contrast_points: str = ""
) -> dict[str, tuple[float, float]]:
    """Each command's (seconds, GB) on an N-row table; empty options keep the commands' defaults."""
    data = folder / f"data-{n_rows}.npz"
    if not data.exists():
        write_table(data, n_rows)
    run, found = folder / f"run-{n_rows}", {}
    shutil.rmtree(run, ignore_errors=True)
    needs_run = "train" in commands or "eval" in commands
    if needs_run:
        found["train"] = measure(
            lpae("train", "--data", str(data), "--epochs", "1", "--out", str(run)), folder
        )
    if "eval" in commands:
        found["eval"] = measure(lpae("eval", str(run), "--quiet"), folder)
    if "advise" in commands:
        extra = ["--epochs", advise_epochs] if advise_epochs else []
        found["advise"] = measure(lpae("advise", "--data", str(data), "--quiet", *extra), folder)
    if "contrast" in commands:
        extra = ["--max-points", contrast_points] if contrast_points else []
        found["contrast"] = measure(
            lpae("contrast", "--data", str(data), "--json", "contrast.json", *extra), folder
        )
    if "report" in commands:
        study = folder / f"study-{n_rows}"
        shutil.rmtree(study, ignore_errors=True)
        grid = folder / f"grid-{n_rows}.toml"
        grid.write_text(study_grid(str(data), ("lp:2", "lp:1"), 1, 1))
        subprocess.run(
            lpae("study", str(grid), "--out", str(study), "--no-report", "--quiet"),
            check=True,
            cwd=folder,
            stdout=subprocess.DEVNULL,
        )
        clear_health(study)
        found["report"] = measure(lpae("report", str(study)), folder)
        shutil.rmtree(study, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)
    return found


# --- runs -----------------------------------------------------------------------------------------


def template_study(folder: Path) -> dict[str, tuple[dict[str, Any], Path]]:
    """criterion -> (metrics, run folder) of four really trained runs."""
    study = folder / "template"
    if not (study / "study.sqlite").exists():
        grid = folder / "template.toml"
        grid.write_text(study_grid(RUNS_DATA, CRITERIA, 1, 3))
        subprocess.run(
            lpae("study", str(grid), "--out", str(study), "--no-report", "--quiet"),
            check=True,
            cwd=folder,
            stdout=subprocess.DEVNULL,
        )
    with Store(study, create=False) as store:
        rows = store.rows()
    return {str(row.spec["loss"]): (row.metrics, study / row.run_dir) for row in rows}


def jittered(metrics: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Every finite number times a log-normal factor; values in [0, 1] stay there; flags kept."""
    found: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            found[name] = value
            continue
        new = float(value) * float(np.exp(rng.normal(0.0, METRIC_NOISE)))
        found[name] = min(new, 1.0) if 0.0 <= value <= 1.0 else new
    return found


def fake_study(
    n_runs: int, folder: Path, templates: dict[str, tuple[dict[str, Any], Path]], copy: bool
) -> Path:
    """A study folder of n_runs runs written through the store API (module docstring)."""
    study = folder / f"runs-{n_runs}"
    shutil.rmtree(study, ignore_errors=True)
    study.mkdir()
    text = study_grid(RUNS_DATA, CRITERIA, max(1, n_runs // len(CRITERIA)), 3)
    grid = parse_grid(text, "scaling", folder)
    rng = np.random.default_rng(n_runs)
    now = time.time()
    with Store(study) as store:
        store.set_meta({"grid": grid.text, "origin": grid.origin, "base": grid.base, "name": grid.name})
        store.plan((r.run_id, r.key, r.position, r.dir_path) for r in grid.runs)
        outcomes = []
        for planned in grid.runs:
            metrics, run_dir = templates[planned.spec.loss]
            if copy:
                shutil.copytree(run_dir, study / planned.dir_path)
            outcomes.append(Outcome(planned.run_id, "done", jittered(metrics, rng), "", now, now + 1.0))
        store.record(outcomes)
    return study


def runs_report(
    n_runs: int, folder: Path, templates: dict[str, tuple[dict[str, Any], Path]], copy: bool
) -> dict[str, tuple[float, float]]:
    study = fake_study(n_runs, folder, templates, copy)
    found = {"report cold": measure(lpae("report", str(study)), folder)}
    found["report warm"] = measure(lpae("report", str(study)), folder)
    shutil.rmtree(study, ignore_errors=True)
    return found


# --- main -----------------------------------------------------------------------------------------


def sizes(text: str) -> list[int]:
    return [] if text in ("", "none") else [int(float(part)) for part in text.split(",")]


def print_table(title: str, unit: str, results: dict[str, dict[int, tuple[float, float]]]) -> list[str]:
    fields = []
    print(f"\n{title}")
    for name, by_size in results.items():
        ns = sorted(by_size)
        overall, last = exponent(ns, [by_size[n][0] for n in ns])
        cells = ", ".join(f"{n:,} {unit}: {by_size[n][0]:.1f} s {by_size[n][1]:.2f} GB" for n in ns)
        print(f"  {name:12s} {cells}; exponent {overall:.2f} (last pair {last:.2f})")
        key = name.replace(" ", "_")
        fields.append(f"{key}_exponent={overall:.2f} {key}_last_exponent={last:.2f}")
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2000,20000,200000", help="row counts, or none")
    parser.add_argument("--train-rows", default="", help="extra row counts for train alone (e.g. 2000000)")
    parser.add_argument("--runs", default="10,100,1000,10000", help="study sizes in runs, or none")
    parser.add_argument("--commands", default=",".join(COMMANDS), help="subset of " + ",".join(COMMANDS))
    parser.add_argument(
        "--advise-epochs", default="", help="advise --epochs (default: its own, 100k samples)"
    )
    parser.add_argument("--contrast-points", default="", help="contrast --max-points (default: its own)")
    parser.add_argument("--quick", action="store_true", help="rows 2000,20000 and runs 10,100,1000")
    parser.add_argument("--no-run-folders", action="store_true", help="fake runs without folders (no health)")
    parser.add_argument("--folder", help="work here and keep the files (default: a temporary folder)")
    args = parser.parse_args()
    rows = sizes("2000,20000" if args.quick else args.rows)
    runs = sizes("10,100,1000" if args.quick else args.runs)
    commands = tuple(c for c in args.commands.split(",") if c)
    unknown = set(commands) - set(COMMANDS)
    if unknown:
        parser.error(f"unknown commands {sorted(unknown)}; allowed: {', '.join(COMMANDS)}")
    print(f"cores {len(os.sched_getaffinity(0))}; load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="lpae-bench-scaling-") as tmp:
        folder = Path(args.folder or tmp).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        by_rows: dict[str, dict[int, tuple[float, float]]] = {}
        for n_rows in rows:
            found = rows_commands(n_rows, folder, commands, args.advise_epochs, args.contrast_points)
            for name, figure in found.items():
                by_rows.setdefault(name, {})[n_rows] = figure
                print(
                    f"rows {n_rows:,} {name}: {figure[0]:.1f} s, {figure[1]:.2f} GB, load "
                    f"{os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        for n_rows in sizes(args.train_rows):
            figure = rows_commands(n_rows, folder, ("train",))["train"]
            by_rows.setdefault("train", {})[n_rows] = figure
            print(f"rows {n_rows:,} train: {figure[0]:.1f} s, {figure[1]:.2f} GB", flush=True)
        by_runs: dict[str, dict[int, tuple[float, float]]] = {}
        if runs:
            templates = template_study(folder)
            for n_runs in runs:
                for name, figure in runs_report(n_runs, folder, templates, not args.no_run_folders).items():
                    by_runs.setdefault(name, {})[n_runs] = figure
                    print(
                        f"runs {n_runs:,} {name}: {figure[0]:.1f} s, {figure[1]:.2f} GB, load "
                        f"{os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    fields = print_table("against rows (64 features)", "rows", by_rows)
    fields += print_table("study report against runs", "runs", by_runs)
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
