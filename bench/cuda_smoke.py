"""CUDA smoke test of training (run on a machine with a GPU; no test needs one).

Trains, on ``--device`` (default cuda): ae / dae / vae, mlp and conv, under several criteria,
through the CLI; a fused group of mixed criteria (lpae.fused.train_group) against the same runs
trained alone on the same device; and a tiny study with 2 workers. Prints one line per check
and ends with ``RESULT ok=N failed=M``. Run from the repository root:

    PYTHONPATH=src python bench/cuda_smoke.py --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

CLI_RUNS = [  # (name, extra arguments of `lpae train`)
    ("ae-mlp-l2", ["--loss", "l2"]),
    ("ae-mlp-lp0.5", ["--loss", "lp:0.5"]),
    (
        "dae-mlp-studentt",
        ["--model", "dae", "--loss", "student_t:df=learned", "--corruption", "mask:rate=0.2"],
    ),
    ("vae-mlp-gennorm", ["--model", "vae", "--loss", "gennorm:p=learned,scale=learned", "--kl-warmup", "2"]),
    ("ae-conv-barron", ["--arch", "conv", "--loss", "barron:alpha=learned"]),
    ("vae-conv-cbernoulli", ["--model", "vae", "--arch", "conv", "--loss", "cbernoulli"]),
    (
        "ae-mlp-gaussian-predicted",
        ["--loss", "gaussian:scale=predicted", "--schedule", "cosine", "--clip", "1"],
    ),
]


def check(name: str, ok: bool, detail: str, results: list[bool]) -> None:
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)


def cli_runs(out: Path, device: str, results: list[bool]) -> None:
    for name, extra in CLI_RUNS:
        run_dir = out / name
        command = [
            sys.executable,
            "-m",
            "lpae",
            "train",
            "--data",
            "digits",
            "--epochs",
            "4",
            "--quiet",
            "--device",
            device,
            "--out",
            str(run_dir),
            *extra,
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            check(name, False, f"exit {done.returncode}: {done.stderr.strip()[-300:]}", results)
            continue
        metrics = json.loads((run_dir / "metrics.json").read_text())
        history = (run_dir / "history.csv").read_text().splitlines()
        finite = all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))
        fine = metrics["status"] == "done" and finite and len(history) == 5
        keys = ("recon_l2", "nll_gennorm_bpd", "elbo", "iwae", "learned_p", "learned_df", "learned_alpha")
        shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in keys if k in metrics)
        check(name, fine, f"{seconds:.1f} s, {shown}", results)
    evaluated = subprocess.run(
        [sys.executable, "-m", "lpae", "eval", str(out / "vae-conv-cbernoulli"), "--quiet"],
        capture_output=True,
        text=True,
    )
    check("eval of a CUDA-trained run", evaluated.returncode == 0, evaluated.stderr.strip()[-200:], results)


def fused_group(out: Path, device: str, results: list[bool]) -> None:
    from lpae.config import RunSpec
    from lpae.experiment import train_run
    from lpae.fused import train_group
    from lpae.models import ModelSettings
    from lpae.train import TrainSettings

    losses = ["l2", "l1", "gennorm:p=learned", "student_t:df=learned", "gaussian:scale=predicted"]
    specs = [
        RunSpec(
            data="digits",
            loss=loss,
            model=ModelSettings(hidden=(64,), latent=8),
            train=TrainSettings(epochs=5, batch_size=64, seed=seed, device=device),
        )
        for seed, loss in enumerate(losses)
    ]
    started = time.perf_counter()
    fused = train_group(specs, [out / f"fused{i}" for i in range(len(specs))])
    fused_seconds = time.perf_counter() - started
    started = time.perf_counter()
    alone = [train_run(spec, out / f"alone{i}") for i, spec in enumerate(specs)]
    alone_seconds = time.perf_counter() - started
    marked = all(json.loads((out / f"fused{i}" / "config.json").read_text()).get("fused") for i in range(5))
    gaps = [abs(f["recon_l2"] - a["recon_l2"]) / a["recon_l2"] for f, a in zip(fused, alone, strict=True)]
    check(
        "fused group on " + device,
        marked and all(f["status"] == "done" for f in fused) and max(gaps) < 1e-3,
        f"5 members in {fused_seconds:.1f} s vs {alone_seconds:.1f} s alone; "
        f"largest relative recon_l2 gap to solo runs {max(gaps):.2e}",
        results,
    )


def tiny_study(out: Path, device: str, results: list[bool]) -> None:
    grid = out / "tiny.toml"
    grid.write_text(
        f'name = "cuda-smoke"\nseeds = [0, 1]\ncriteria = ["l1", "l2", "lp:0.5"]\ndata = ["digits"]\n'
        f'[[models]]\nhidden = [32]\nlatent = 4\n'
        f'[train]\nepochs = 3\ncheckpoint_every = 0\ndevice = "{device}"\n'
    )
    command = [
        sys.executable,
        "-m",
        "lpae",
        "study",
        str(grid),
        "--out",
        str(out / "study"),
        "--workers",
        "2",
        "--quiet",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    report = out / "study" / "report.html"
    check(
        "tiny study, 2 workers",
        done.returncode == 0 and report.is_file(),
        f"{seconds:.1f} s, exit {done.returncode} {done.stderr.strip()[-300:]}",
        results,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, cuda available {torch.cuda.is_available()}", flush=True)
    if args.device == "cuda" and torch.cuda.is_available():
        print(torch.cuda.get_device_name(0), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[bool] = []
    for part in (cli_runs, fused_group, tiny_study):
        try:
            part(args.out, args.device, results)
        except Exception as error:  # a smoke test reports every part, whatever breaks
            check(part.__name__, False, f"{type(error).__name__}: {error}", results)
    print(f"RESULT ok={sum(results)} failed={len(results) - sum(results)}")


if __name__ == "__main__":
    main()
