"""A conv autoencoder's epoch time on CIFAR-10-shaped data: lpae.train.fit against a minimal
hand-written PyTorch loop with the same layers.

Data: random uint8 images written as CIFAR-10 binary batches (``data_batch_1..5.bin``,
``test_batch.bin``; 1 label byte + 3072 pixel bytes a record) in a temporary folder and loaded
through lpae's loader, ``cifar10:path=DIR,split=train`` (``--samples`` images, 10,000 by default,
3x32x32), scaled to [0, 1]. The load time is reported beside the training times.

Model: lpae's conv AE (lpae.models ``conv_encoder`` / ``conv_decoder``: 3x3 stride-2
convolutions of ``--hidden`` channels, 32,64 by default, then a Linear to a ``--latent``-wide
code, 32; the decoder mirrors it with transposed convolutions), loss lp:2 = sum of squared
errors per sample, batch mean, Adam at lr 1e-3, batch ``--batch-size`` (128), ``--threads``
threads (2). The baseline writes the same layers out by hand (checked to have the same parameter
shapes) and trains them with shuffled slices, no validation, no bookkeeping. ``fit`` runs as a
user calls it: per-epoch validation on 256 rows, history and best-weight snapshots included.
``loop+fused`` is the baseline with PyTorch's fused Adam kernel, which fit uses (for reference).

Contestants alternate within each round (round 0 warms up and is not counted), each training
``--epochs`` epochs (1) from a fresh model; medians over ``--rounds`` rounds (5).
ratio = baseline seconds / fit seconds (target >= 0.95); the median of per-round ratios and the
ratio of process CPU seconds are printed too (robust to a machine whose load drifts: on a loaded
machine wall time measures the scheduler as much as the work).

Run from the repository root: ``.venv/bin/python bench/conv.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lpae import criteria
from lpae.config import ModelSettings, TrainSettings
from lpae.data import load
from lpae.models import build_model
from lpae.train import fit

SHAPE = (3, 32, 32)
TARGET = 0.95


def write_batches(folder: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """Random CIFAR-10 binary batches: n_train records over 5 training files, n_test in the test file."""
    rng = np.random.default_rng(seed)
    sizes = [n_train // 5 + (i < n_train % 5) for i in range(5)]
    names = [f"data_batch_{i + 1}.bin" for i in range(5)] + ["test_batch.bin"]
    for name, n in zip(names, [*sizes, n_test], strict=True):
        records = rng.integers(0, 256, size=(n, 1 + 3 * 32 * 32), dtype=np.uint8)
        records[:, 0] %= 10  # the label byte
        (folder / name).write_bytes(records.tobytes())


def hand_written(hidden: tuple[int, int], latent: int) -> nn.Sequential:
    """The conv AE for 3x32x32 with two stride-2 layers, written out: 32 -> 16 -> 8 and back."""
    c1, c2 = hidden
    encoder = nn.Sequential(
        nn.Conv2d(3, c1, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c2 * 8 * 8, latent),
    )
    decoder = nn.Sequential(
        nn.Linear(latent, c2 * 8 * 8),
        nn.ReLU(),
        nn.Unflatten(1, (c2, 8, 8)),
        nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(c1, 3, 3, stride=2, padding=1, output_padding=1),
    )
    return nn.Sequential(encoder, decoder)


def lpae_model(hidden: tuple[int, int], latent: int) -> torch.nn.Module:
    settings = ModelSettings(arch="conv", hidden=hidden, latent=latent)
    return build_model(SHAPE, settings, criteria.build("lp:2"))


def check_same_layers(hidden: tuple[int, int], latent: int) -> None:
    ours = [tuple(p.shape) for p in lpae_model(hidden, latent).parameters()]
    theirs = [tuple(p.shape) for p in hand_written(hidden, latent).parameters()]
    if ours != theirs:
        raise RuntimeError(f"the baseline's layers differ from lpae's: {theirs} vs {ours}")


def minimal_loop(
    x: torch.Tensor,
    hidden: tuple[int, int],
    latent: int,
    batch_size: int,
    epochs: int,
    seed: int,
    fused: bool,
) -> None:
    torch.manual_seed(seed)
    model = hand_written(hidden, latent)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused or None)
    for _ in range(epochs):
        shuffled = x[torch.randperm(len(x))]
        for start in range(0, len(x), batch_size):
            xb = shuffled[start : start + batch_size]
            loss = (model(xb) - xb).square().flatten(1).sum(dim=1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def lpae_fit(
    x: torch.Tensor,
    x_val: torch.Tensor,
    hidden: tuple[int, int],
    latent: int,
    batch_size: int,
    epochs: int,
    seed: int,
) -> None:
    torch.manual_seed(seed)
    model = lpae_model(hidden, latent)
    settings = TrainSettings(epochs=epochs, lr=1e-3, batch_size=batch_size, seed=seed, device="cpu")
    result = fit(model, x, x_val, settings)  # type: ignore[arg-type]
    if result.status != "done":
        raise RuntimeError(f"fit did not finish: {result.reason}")


def timed(run: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10000, help="training images")
    parser.add_argument("--val-rows", type=int, default=256)
    parser.add_argument("--hidden", default="32,64", help="two channel counts")
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per contestant and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    if len(hidden) != 2:
        raise SystemExit("--hidden: give two channel counts (the hand-written baseline has two layers)")
    hidden_pair = (hidden[0], hidden[1])
    check_same_layers(hidden_pair, args.latent)

    with tempfile.TemporaryDirectory() as folder:
        write_batches(Path(folder), args.samples, args.val_rows)
        started = time.perf_counter()
        train = load(f"cifar10:path={folder},split=train")
        load_s = time.perf_counter() - started
        val = load(f"cifar10:path={folder},split=test")
    if train.x.shape != (args.samples, *SHAPE):
        raise RuntimeError(f"loaded {train.x.shape}, expected ({args.samples}, 3, 32, 32)")
    x = torch.from_numpy(train.x) / 255.0  # (N, 3, 32, 32) in [0, 1]
    x_val = torch.from_numpy(val.x) / 255.0
    b, e = args.batch_size, args.epochs
    contestants: dict[str, Callable[[int], None]] = {
        "loop": lambda seed: minimal_loop(x, hidden_pair, args.latent, b, e, seed, fused=False),
        "fit": lambda seed: lpae_fit(x, x_val, hidden_pair, args.latent, b, e, seed),
        "loop+fused": lambda seed: minimal_loop(x, hidden_pair, args.latent, b, e, seed, fused=True),
    }
    print(
        f"conv AE 3x32x32, channels {args.hidden}, latent {args.latent}, batch {b}, {args.samples} random "
        f"images loaded through cifar10:path=DIR in {load_s:.2f} s; {e} epoch(s) per contestant and "
        f"round, {args.rounds} rounds, {args.threads} threads"
    )
    seconds: dict[str, list[float]] = {name: [] for name in contestants}
    cpu: dict[str, list[float]] = {name: [] for name in contestants}
    for round_ in range(args.rounds + 1):  # round 0 warms up and is not counted
        for name, run in contestants.items():
            wall_s, cpu_s = timed(lambda run=run, seed=round_: run(seed))
            if round_ > 0:
                seconds[name].append(wall_s / e)
                cpu[name].append(cpu_s / e)
        if round_ > 0:
            print(
                f"  round {round_}: "
                + ", ".join(f"{k} {v[-1]:.2f} s (cpu {cpu[k][-1]:.2f} s)" for k, v in seconds.items()),
                flush=True,
            )
    median = {name: statistics.median(values) for name, values in seconds.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    paired = statistics.median(a / b for a, b in zip(seconds["loop"], seconds["fit"], strict=True))
    for name, value in median.items():
        print(
            f"  {name:10s} median epoch {value:7.2f} s (cpu {median_cpu[name]:7.2f} s)   "
            f"loop / {name} = {median['loop'] / value:.3f} (cpu {median_cpu['loop'] / median_cpu[name]:.3f})"
        )
    ratio = median["loop"] / median["fit"]
    print(
        "RESULT "
        f"fit_epoch_s={median['fit']:.4g} loop_epoch_s={median['loop']:.4g} "
        f"fused_loop_epoch_s={median['loop+fused']:.4g} ratio={ratio:.4g} ratio_paired={paired:.4g} "
        f"ratio_cpu={median_cpu['loop'] / median_cpu['fit']:.4g} "
        f"ratio_vs_fused_loop={median['loop+fused'] / median['fit']:.4g} load_s={load_s:.4g} "
        f"load_avg={os.getloadavg()[0]:.3g} ok={int(ratio >= TARGET)}"
    )


if __name__ == "__main__":
    main()
