"""Own-metric comparison of a few training variants, scored as the study's health check scores them.

Trains each variant with ``lpae train`` (the quick preset's model and training: MLP 64-8, 25
epochs, batch 64, lr 0.01 cosine, unless a variant's extra flags say otherwise), then scores every
run of a seed on the own metric of the reference variant's run (lpae.criteria.own_metric_spec):
its objective's reconstructions of the training rows (lpae.study.health.RunResiduals), plus a
VAE's KL term. Prints each variant's value and how far behind the reference it is (relative for a
plain loss, nats per element for a likelihood), and ends with a RESULT line.

Example (bench/README.md, "fair training"): the Gaussian likelihood with per-batch and with epoch
calibration on contaminated data, against lp:2 and l1l2:

    .venv/bin/python bench/own_metric.py --data synthetic:dim=64 --reference gauss \\
        --variant 'gauss=gaussian:scale=calibrated --contaminate 0.05' \\
        --variant 'per_batch=gaussian:scale=calibrated --contaminate 0.05 --normalize energy' \\
        --variant 'lp2=lp:2 --contaminate 0.05' --variant 'l1l2=l1l2 --contaminate 0.05'
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lpae.criteria import describe, own_metric, own_metric_spec
from lpae.runs import read_json_object
from lpae.study.health import RunResiduals

PRESET = ["--hidden", "64", "--latent", "8", "--epochs", "25", "--lr", "0.01", "--schedule", "cosine"]
PRESET += ["--batch-size", "64", "--checkpoint-every", "0", "--quiet"]


def train(out: Path, data: str, loss: str, seed: int, extra: list[str]) -> Path:
    command = [sys.executable, "-m", "lpae", "train", "--data", data, "--loss", loss, "--seed", str(seed)]
    subprocess.run([*command, *PRESET, *extra, "--out", str(out)], check=True, capture_output=True)
    return out


def score(base: Path, runs: dict[str, Path], reference: str) -> tuple[str, dict[str, float]]:
    """The reference run's own metric and every run's value on it (training rows)."""
    owner = runs[reference]
    config = json.loads((owner / "config.json").read_text())
    spec = own_metric_spec(config["loss"], read_json_object(owner / "metrics.json"))
    if spec is None:
        raise SystemExit(f"{config['loss']} has no own metric")
    loader = RunResiduals(base)
    values = {}
    for name, run in runs.items():
        residuals, term = loader.residuals(run.name, {"own": config["data"]["preprocess"]})
        values[name] = own_metric(spec, residuals["own"]) + term
    return spec, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument(
        "--variant", action="append", required=True, help="NAME=LOSS [extra lpae train flags]"
    )
    parser.add_argument("--reference", required=True, help="the variant whose own metric scores all")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    variants = {}
    for text in args.variant:
        name, _, rest = text.partition("=")
        loss, *extra = shlex.split(rest)
        variants[name] = (loss, extra)
    if args.reference not in variants:
        parser.error(f"--reference {args.reference} is not a variant name")
    seeds = [int(s) for s in args.seeds.split(",")]
    base = Path(tempfile.mkdtemp(prefix="lpae-own-metric-"))
    with ThreadPoolExecutor(args.workers) as pool:
        jobs = {
            (name, seed): pool.submit(train, base / f"{name}_s{seed}", args.data, loss, seed, extra)
            for seed in seeds
            for name, (loss, extra) in variants.items()
        }
    behind: dict[str, list[float]] = {name: [] for name in variants}
    for seed in seeds:
        spec, values = score(base, {name: jobs[(name, seed)].result() for name in variants}, args.reference)
        likelihood = describe(spec).likelihood
        best = min(values.values())
        unit = "nats per element" if likelihood else "energy per element"
        print(f"seed {seed}, own metric {spec} ({unit}):")
        for name, value in values.items():
            gap = value - best if likelihood else (value - best) / best
            behind[name].append(gap)
            relative = "" if likelihood else " (relative)"
            print(f"  {name:>16} {value:.4f}  behind the best by {gap:+.3f}{relative}")
    print("RESULT " + " ".join(f"{name}_behind={sum(g) / len(g):.4f}" for name, g in behind.items()))


if __name__ == "__main__":
    main()
