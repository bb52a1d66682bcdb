"""A finished run folder replayed into a tracker: what each file of the run becomes.

- params: config.json flattened to dotted names (``train.lr``, ``model.hidden``, ``data.spec``,
  versions included), each value a string (JSON for numbers, lists, booleans and null); the
  fitted preprocessing statistics (``data.preprocess.shift``/``scale``, one number per feature)
  are results of the data, not settings, and are left out;
- per-epoch metrics: history.csv's columns at step = its ``epoch`` column;
- final metrics: metrics.json's numbers (booleans and strings become tags ``lpae.NAME``) at step =
  the last epoch;
- artifacts: config.json, metrics.json and history.csv, and for a VAE on image data a grid of
  SAMPLE_COUNT prior samples (samples.png: lpae.generate.prior_samples with seed 0, decoder means);
- tags: ``lpae.status`` (done or diverged) and those the caller gives.

Replaying the files, rather than logging from inside the training loop, treats every run the same:
trained alone or in a fused group (lpae.fused), resumed from a checkpoint, or on a Ray worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lpae.runs import read_json_object
from lpae.tracking.base import Tracker

SAMPLE_COUNT = 64
RUN_FILES = ("config.json", "metrics.json", "history.csv")
STATISTICS = ("data.preprocess.shift", "data.preprocess.scale", "data.preprocess.shape")


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """config.json as ``{"train.lr": "0.001", "model.hidden": "[256, 128]", ...}`` (module docstring)."""
    params: dict[str, str] = {}
    for name, value in config.items():
        key = f"{prefix}{name}"
        if key in STATISTICS:
            continue
        if isinstance(value, Mapping):
            params.update(flat_params(value, f"{key}."))
        else:
            params[key] = value if isinstance(value, str) else json.dumps(value)
    return params


def final_values(metrics: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """metrics.json split into numbers (final metrics) and the rest (tags ``lpae.NAME``)."""
    numbers: dict[str, float] = {}
    tags: dict[str, str] = {}
    for name, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            numbers[name] = float(value)
        else:
            tags[f"lpae.{name}"] = value if isinstance(value, str) else json.dumps(value)
    return numbers, tags


def history_rows(path: Path) -> list[tuple[int, dict[str, float]]]:
    """history.csv as (epoch, {column: value}) per row; nan and inf are kept (a diverged run's last
    rows)."""
    history = pd.read_csv(path)
    if "epoch" not in history:
        raise ValueError(f"{path}: no epoch column; the run folder is damaged: retrain the run")
    columns = [c for c in history.columns if c != "epoch"]
    return [(int(row["epoch"]), {c: float(row[c]) for c in columns}) for _, row in history.iterrows()]


def run_stamp(run_dir: Path) -> str:
    """A digest of the run's results (metrics.json and history.csv): changes when it is retrained."""
    digest = hashlib.sha256()
    for name in ("metrics.json", "history.csv"):
        digest.update((run_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def sample_grid(run_dir: Path, folder: Path) -> Path | None:
    """samples.png in ``folder`` for a VAE run on image data, else None (module docstring)."""
    from lpae.generate import prior_samples, write_samples
    from lpae.runs import load_run

    run = load_run(run_dir)
    if run.config.model.model != "vae":
        return None
    generated = prior_samples(run, SAMPLE_COUNT, seed=0)
    if generated.image_shape is None:
        return None
    return write_samples(folder / "samples.png", generated)


def track_run(
    tracker: Tracker,
    run_dir: Path | str,
    name: str,
    tags: Mapping[str, str] | None = None,
    key: str | None = None,
) -> bool:
    """Log a finished run folder (module docstring); False when ``key`` is logged already with
    these results (nothing done)."""
    run_dir = Path(run_dir)
    stamp = run_stamp(run_dir)
    if key is not None and tracker.stamp(key) == stamp:
        return False
    config = read_json_object(run_dir / "config.json")
    metrics = read_json_object(run_dir / "metrics.json")
    numbers, metric_tags = final_values(metrics)
    history = history_rows(run_dir / "history.csv")
    status = str(metrics.get("status", ""))
    all_tags = {**metric_tags, **(tags or {})}
    with tempfile.TemporaryDirectory(prefix="lpae-track-") as scratch:
        samples = sample_grid(run_dir, Path(scratch)) if status == "done" else None
        run = tracker.start_run(name, flat_params(config), all_tags, key)
        try:
            for epoch, values in history:
                run.log_epoch(epoch, values)
            last = history[-1][0] if history else 0
            run.log_final(numbers, last)
            for file in RUN_FILES:
                run.log_artifact(run_dir / file)
            if samples is not None:
                run.log_artifact(samples)
        except BaseException:
            with contextlib.suppress(Exception):  # the first failure is the one to report
                run.abort()
            raise
        run.end(status, stamp)
    return True
