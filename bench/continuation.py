"""Continuation on the README's example: fractional L_p on digits with and without a schedule.

The runs of issue 15: `lpae train --data digits --loss LOSS --latent 8 --epochs 30 --seed S` for
lp:0.5 and lp:0.3 with continuation off (0) and at its default, against lp:2, for seeds 0, 1, 2
(each a full run: training, the kept best epoch, test metrics). Reported per run: the test
recon_l0.5 (mean |r|^0.5, standardised units), the validation RMSE of the kept epoch and the
latent probe accuracy; the last line is RESULT with the worst seed's figures per case and
whether the targets hold (recon_l0.5 below lp:2's for every seed, validation RMSE below 0.9).

    .venv/bin/python bench/continuation.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from lpae.config import RunSpec, options, with_options
from lpae.experiment import train_run

DEFAULT = float(options()["continuation"].default)
CASES = [("lp:2", DEFAULT), ("lp:0.5", 0.0), ("lp:0.5", DEFAULT), ("lp:0.3", 0.0), ("lp:0.3", DEFAULT)]


def one_run(loss: str, continuation: float, seed: int, folder: Path) -> dict[str, float]:
    values = {"data": "digits", "loss": loss, "latent": 8, "epochs": 30, "seed": seed}
    spec = with_options(RunSpec(), {**values, "continuation": continuation, "checkpoint_every": 0})
    out = folder / f"{loss}-{continuation}-{seed}"
    metrics = train_run(spec, out)
    history = {int(row["epoch"]): row for row in read_history(out)}
    return {
        "recon_l0.5": metrics["recon_l0.5"],
        "val_rmse": history[metrics["best_epoch"]]["val_recon_l2"],
        "probe_acc": metrics["probe_acc"],
    }


def read_history(out: Path) -> list[dict[str, float]]:
    lines = (out / "history.csv").read_text().splitlines()
    names = lines[0].split(",")
    return [dict(zip(names, map(float, line.split(",")), strict=True)) for line in lines[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    torch.set_num_threads(2)
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[tuple[str, float], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for loss, continuation in CASES:
                found = one_run(loss, continuation, seed, Path(tmp))
                results.setdefault((loss, continuation), []).append(found)
                figures = " ".join(f"{k}={v:.4f}" for k, v in found.items())
                print(f"{loss:7s} continuation={continuation:<4g} seed={seed}: {figures}", flush=True)
    l2 = [r["recon_l0.5"] for r in results[("lp:2", DEFAULT)]]
    fields = []
    for (loss, continuation), rows in results.items():
        tag = f"{loss.replace(':', '')}_c{continuation:g}"
        below = all(r["recon_l0.5"] < base for r, base in zip(rows, l2, strict=True))
        worst_rmse = max(r["val_rmse"] for r in rows)
        fields += [
            f"{tag}_l05_max={max(r['recon_l0.5'] for r in rows):.4f}",
            f"{tag}_val_rmse_max={worst_rmse:.3f}",
            f"{tag}_probe_min={min(r['probe_acc'] for r in rows):.3f}",
        ]
        if loss != "lp:2":
            fields.append(f"{tag}_ok={int(below and worst_rmse < 0.9)}")
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
