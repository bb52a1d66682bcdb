"""Benchmark: forward + backward of lpae criteria against torch.nn.functional.mse_loss.

On one (4096, 784) float32 batch (MNIST-sized), with torch.set_num_threads(2), each round runs
every contestant once, in turn, each from a fresh leaf ``out`` with requires_grad:

- ``mse``: ``F.mse_loss(out, x).backward()`` (the baseline);
- ``lp05``: ``build("lp:0.5")(x, out).mean().backward()`` (the compiled single-pass kernel of
  lpae.criteria.power_numba);
- ``lp05_torch``: the same sum through the blocked torch kernel of lpae.criteria.power
  (``power_sum(..., compiled=False)``: the path without numba, and the one every other p takes);
- ``gennorm``: ``build("gennorm:p=learned,scale=learned")(x, out).mean().backward()``, learned
  shape and scale receiving gradients too, with $LPAE_COMPILE set by ``--compile`` (default on:
  the inductor kernels of lpae.criteria.power_compiled, compiled in the warm-up call);
  ``gennorm_eager``: the same with LPAE_COMPILE=0 (the blocked torch kernel LearnedPowerSum);
- ``student_t``: ``build("student_t:df=learned,scale=learned")``, likewise (the inductor kernels
  of lpae.criteria.student_t_compiled); ``student_t_eager``: LPAE_COMPILE=0, the element-wise
  autograd chain;
- ``lp05_autograd`` and ``gennorm_autograd``: the same formulas as plain autograd chains
  (``((r^2 + eps^2)^(1/4) - eps^(1/2)).sum(1)``; ``(|r|/a)^p + log(2a) + lgamma(1/p) - log p``
  with ``pow``), to show what the fused kernel saves.

Medians over the rounds; the ratios are to mse's median in the same run. Targets: lp05 and
gennorm at most 1.5x mse, student_t at most 2x. The first call's wall time of each compiled
kernel (compilation included; shorter with inductor's on-disk cache warm, /tmp/torchinductor_$USER)
is printed and reported as ``*_compile_s``. The values of the fused, eager and autograd versions
are checked to agree.

Run from the repository root: ``.venv/bin/python bench/criteria.py [--rounds 30 --threads 2]``.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from lpae import criteria
from lpae.criteria import inductor, power, power_compiled, student_t_compiled
from lpae.criteria.scale import SCALE_RATE

EPS = 1e-3


def contestants(x: torch.Tensor, out0: torch.Tensor, mode: str) -> dict[str, Callable[[], torch.Tensor]]:
    lp05 = criteria.build("lp:0.5")
    gennorm = criteria.build("gennorm:p=learned,scale=learned")
    student_t = criteria.build("student_t:df=learned,scale=learned")
    p_raw = torch.tensor(gennorm.shape.raw.item(), requires_grad=True)  # the same parametrisation
    scale_raw = torch.tensor(gennorm.scale.raw.item(), requires_grad=True)
    n_features = x.shape[1]

    def leaf() -> torch.Tensor:
        return out0.detach().requires_grad_(True)

    def mse() -> torch.Tensor:
        loss = F.mse_loss(leaf(), x)
        loss.backward()
        return loss

    def lp05_fused() -> torch.Tensor:
        loss = lp05(x, leaf()).mean()
        loss.backward()
        return loss

    def lp05_torch() -> torch.Tensor:
        loss = power.power_sum(x, leaf(), lp05.p, lp05.eps, compiled=False).mean()
        loss.backward()
        return loss

    def gennorm_fused() -> torch.Tensor:
        gennorm.zero_grad(set_to_none=True)
        with inductor.compile_setting(mode):
            loss = gennorm(x, leaf()).mean()
            loss.backward()
        return loss

    def gennorm_eager() -> torch.Tensor:
        gennorm.zero_grad(set_to_none=True)
        with inductor.compile_setting("off"):
            loss = gennorm(x, leaf()).mean()
            loss.backward()
        return loss

    def student_t_fused() -> torch.Tensor:
        student_t.zero_grad(set_to_none=True)
        with inductor.compile_setting(mode):
            loss = student_t(x, leaf()).mean()
            loss.backward()
        return loss

    def student_t_eager() -> torch.Tensor:
        student_t.zero_grad(set_to_none=True)
        with inductor.compile_setting("off"):
            loss = student_t(x, leaf()).mean()
            loss.backward()
        return loss

    def lp05_autograd() -> torch.Tensor:
        residual = leaf() - x
        loss = ((residual.square() + EPS**2).pow(0.25) - EPS**0.5).sum(dim=1).mean()
        loss.backward()
        return loss

    def gennorm_autograd() -> torch.Tensor:
        p = 0.1 + 9.9 * torch.sigmoid(p_raw)
        log_alpha = -6 + F.softplus(SCALE_RATE * scale_raw + 6)
        residual = leaf() - x
        element = (residual.abs() * torch.exp(-log_alpha)).pow(p)
        nll = element.sum(dim=1) + n_features * (log_alpha + math.log(2) + torch.lgamma(1 / p) - torch.log(p))
        loss = nll.mean()
        p_raw.grad = scale_raw.grad = None
        loss.backward()
        return loss

    return {
        "mse": mse,
        "lp05": lp05_fused,
        "lp05_torch": lp05_torch,
        "gennorm": gennorm_fused,
        "gennorm_eager": gennorm_eager,
        "student_t": student_t_fused,
        "student_t_eager": student_t_eager,
        "lp05_autograd": lp05_autograd,
        "gennorm_autograd": gennorm_autograd,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument(
        "--compile", choices=inductor.MODES, default="on", help="LPAE_COMPILE for gennorm, student_t"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.features, generator=generator)
    out0 = x + 0.5 * torch.randn(args.batch, args.features, generator=generator)
    runs = contestants(x, out0, args.compile)

    values = {name: float(run().detach()) for name, run in runs.items()}  # warm-up; values agree
    kernels = {
        "gennorm": (power_compiled.FORWARD, power_compiled.BACKWARD),
        "student_t": (student_t_compiled.FORWARD, student_t_compiled.BACKWARD),
    }
    compile_seconds = {name: sum(k.compile_seconds or 0.0 for k in pair) for name, pair in kernels.items()}
    for name, pair in kernels.items():
        state = (
            "failed, eager" if any(k.failed for k in pair) else f"first call {compile_seconds[name]:.1f} s"
        )
        print(f"{name}: compiled kernels ({args.compile}): {state}")
    pairs = (
        ("lp05", "lp05_autograd"),
        ("lp05_torch", "lp05_autograd"),
        ("gennorm", "gennorm_autograd"),
        ("gennorm_eager", "gennorm_autograd"),
        ("student_t", "student_t_eager"),
    )
    for fused, plain in pairs:
        gap = abs(values[fused] - values[plain]) / abs(values[plain])
        print(f"{fused}: value {values[fused]:.6g}, autograd {values[plain]:.6g}, relative gap {gap:.1e}")
        if gap > 1e-4:
            raise SystemExit(f"{fused} disagrees with its autograd version")

    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu_start = time.process_time()
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    cpu_seconds = time.process_time() - cpu_start
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["mse"]
    print(f"torch {torch.__version__}, {args.threads} threads, batch ({args.batch}, {args.features}) float32")
    print(f"{'contestant':18s} {'median ms':>10s} {'min ms':>8s} {'x mse':>7s}")
    for name, median in medians.items():
        print(f"{name:18s} {1e3 * median:10.2f} {1e3 * min(times[name]):8.2f} {median / base:7.2f}")
    load = os.getloadavg()[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load average {load:.1f}; CPU seconds {cpu_seconds:.1f}; peak memory {peak_mb:.0f} MB")
    ratios = {name: medians[name] / base for name in runs if name != "mse"}
    ok = int(ratios["lp05"] <= 1.5 and ratios["gennorm"] <= 1.5 and ratios["student_t"] <= 2)
    fields = " ".join(f"{name}_over_mse={value:.2f}" for name, value in ratios.items())
    compiles = " ".join(f"{name}_compile_s={value:.1f}" for name, value in compile_seconds.items())
    print(f"RESULT mse_ms={1e3 * base:.2f} {fields} {compiles} target_ok={ok} load={load:.1f}")


if __name__ == "__main__":
    main()
