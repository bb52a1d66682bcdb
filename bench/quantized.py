"""Quantized data: the same runs scored with bin probabilities and with densities, and what it costs.

Trains three digits runs (lp:0.5, gaussian:scale=calibrated, gennorm:p=learned; 5 epochs each)
into a temporary folder, copies each run folder with ``data.preprocess.quantization`` removed
from its config.json (what a run from before issue 16 reads as: densities), then evaluates the
two alternately, ``--rounds`` times. Prints nll_gennorm_bpd, its fitted p and scale both ways,
and the median evaluation time; last line RESULT with the ratios of evaluation time (bins /
densities) and lp:0.5's bpd gap to the best other run both ways (negative: lp:0.5 leads).

    .venv/bin/python bench/quantized.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from lpae.config import RunSpec, TrainSettings
from lpae.experiment import train_run
from lpae.metrics.evaluate import evaluate

LOSSES = ("lp:0.5", "gaussian:scale=calibrated", "gennorm:p=learned")
KEYS = ("nll_gennorm_bpd", "nll_gennorm_p", "nll_gennorm_scale")


def as_density(run: Path) -> Path:
    """A copy of the run whose config.json lacks the quantization record."""
    copy = run.with_name(run.name + "-density")
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    del config["data"]["preprocess"]["quantization"]
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    found: dict[str, dict[str, dict[str, float]]] = {}
    seconds: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for loss in LOSSES:
            run = Path(folder) / loss.replace(":", "_").replace("=", "-").replace(",", "_")
            train_run(
                RunSpec(data="digits", loss=loss, train=TrainSettings(epochs=5, checkpoint_every=0)), run
            )
            paths = {"bins": run, "density": as_density(run)}
            seconds[loss] = {"bins": [], "density": []}
            for _ in range(args.rounds):
                for way, path in paths.items():
                    started = time.perf_counter()
                    metrics = evaluate(path)
                    seconds[loss][way].append(time.perf_counter() - started)
                    found.setdefault(loss, {})[way] = {key: float(metrics[key]) for key in KEYS}
    print(f"{'run':28} {'way':8} {'bpd':>7} {'p':>6} {'scale':>8} {'eval s':>7}")
    for loss in LOSSES:
        for way in ("bins", "density"):
            row, median = found[loss][way], statistics.median(seconds[loss][way])
            print(
                f"{loss:28} {way:8} {row['nll_gennorm_bpd']:7.3f} {row['nll_gennorm_p']:6.2f} "
                f"{row['nll_gennorm_scale']:8.3g} {median:7.2f}"
            )
    result = []
    for way in ("bins", "density"):
        others = min(found[loss][way]["nll_gennorm_bpd"] for loss in LOSSES[1:])
        result.append(f"lp05_gap_{way}={found['lp:0.5'][way]['nll_gennorm_bpd'] - others:.3f}")
    for loss in LOSSES:
        ratio = statistics.median(seconds[loss]["bins"]) / statistics.median(seconds[loss]["density"])
        result.append(f"eval_ratio_{loss.split(':')[0]}={ratio:.2f}")
    print("RESULT " + " ".join(result))


if __name__ == "__main__":
    main()
