"""Fused training vs training the same models one after another (model-samples per second).

Two cases (issue 8):

- small: K = 32 AEs 30-64-32-4 at batch 64 on breast_cancer (569 x 30, standardised);
  target >= 6x the minimal sequential loop;
- mnist: K = 8 AEs 784-512-256-32 at batch 256 on MNIST rows (random data of that shape when
  MNIST is not installed); target >= 1.0x.

Contestants, alternated within each repeat, same models (same seeds), same epochs, L2 loss:

- ``minimal``: for each model in turn, the minimal PyTorch loop (torch.optim.Adam, one shuffle per
  epoch, loss.backward(), step), no validation;
- ``minimal_fa``: the same with torch.optim.Adam(fused=True) (one kernel per step; the sequential
  loop at its fastest, as lpae.train.fit runs it);
- ``fused``: the fused group's training epochs (lpae.fused.train.FusedGroup.train_epoch), no
  validation;
- ``fit`` / ``fit_group`` (small case only): the full lpae.train.fit per model vs
  lpae.fused.fit_group, validation each epoch included.

Prints medians and, last, ``RESULT key=value ...`` with the ratios. Run from the repository root:
``.venv/bin/python bench/fused.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from lpae import criteria
from lpae.config import ModelSettings, TrainSettings
from lpae.fused import fit_group
from lpae.fused.train import FusedGroup
from lpae.models import Autoencoder, build_model
from lpae.train import fit


def build(n_models: int, n_features: int, hidden: tuple[int, ...], latent: int) -> list[Autoencoder]:
    models = []
    for seed in range(n_models):
        torch.manual_seed(seed)
        settings = ModelSettings(model="ae", arch="mlp", hidden=hidden, latent=latent)
        models.append(build_model((n_features,), settings, criteria.build("l2")))
    return models


def minimal_loop(
    models: list[Autoencoder], x: torch.Tensor, epochs: int, batch_size: int, fused_adam: bool = False
) -> None:
    for seed, model in enumerate(models):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused_adam or None)
        shuffle = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=shuffle)
            for start in range(0, len(x), batch_size):
                xb = x[order[start : start + batch_size]]
                loss = model.criterion(xb, model(xb)).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()


def fused_loop(models: list[Autoencoder], x: torch.Tensor, epochs: int, batch_size: int) -> None:
    settings = [TrainSettings(batch_size=batch_size, seed=seed, device="cpu") for seed in range(len(models))]
    group = FusedGroup(models, [x] * len(models), [x[:1]] * len(models), settings)
    for _ in range(epochs):
        group.train_epoch([1e-3] * len(models), [0.0] * len(models))


def fit_each(models: list[Autoencoder], x: Tensor, x_val: Tensor, epochs: int, batch: int) -> None:
    for seed, model in enumerate(models):
        fit(model, x, x_val, TrainSettings(epochs=epochs, batch_size=batch, seed=seed, device="cpu"))


def fit_fused(models: list[Autoencoder], x: Tensor, x_val: Tensor, epochs: int, batch: int) -> None:
    settings = [
        TrainSettings(epochs=epochs, batch_size=batch, seed=seed, device="cpu") for seed in range(len(models))
    ]
    fit_group(models, [x] * len(models), [x_val] * len(models), settings)


def timed(run: Callable[[], None]) -> tuple[float, float]:
    """Wall and process CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(
    name: str,
    contestants: dict[str, Callable[[], None]],
    samples: int,
    repeats: int,
) -> dict[str, float]:
    """Median model-samples per second of each contestant, alternating them in every repeat:
    by wall time (key) and by process CPU time (key + "_cpu")."""
    seconds: dict[str, list[tuple[float, float]]] = {key: [] for key in contestants}
    for _ in range(repeats):
        for key, run in contestants.items():
            seconds[key].append(timed(run))
    rates = {}
    for key, values in seconds.items():
        rates[key] = samples / statistics.median(wall for wall, _ in values)
        rates[key + "_cpu"] = samples / statistics.median(cpu for _, cpu in values)
        spread = ", ".join(f"{wall:.2f}/{cpu:.2f}" for wall, cpu in values)
        print(
            f"{name:6s} {key:10s} {rates[key]:10,.0f} model-samples/s wall, {rates[key + '_cpu']:10,.0f} "
            f"per CPU-second   (wall/CPU s: {spread})",
            flush=True,
        )
    return rates


def standardised(x: np.ndarray) -> torch.Tensor:
    std = x.std(0)
    return torch.from_numpy(((x - x.mean(0)) / np.where(std > 0, std, 1)).astype(np.float32))


def small_case(repeats: int) -> dict[str, float]:
    from lpae.data import load

    x = standardised(load("breast_cancer").x)  # (569, 30)
    k, epochs, batch = 32, 5, 64
    val = x[:85]

    def fresh() -> list[Autoencoder]:
        return build(k, 30, (64, 32), 4)

    rates = compare(
        "small",
        {
            "minimal": lambda: minimal_loop(fresh(), x, epochs, batch),
            "minimal_fa": lambda: minimal_loop(fresh(), x, epochs, batch, fused_adam=True),
            "fused": lambda: fused_loop(fresh(), x, epochs, batch),
        },
        k * epochs * len(x),
        repeats,
    )
    full = compare(
        "small",
        {
            "fit": lambda: fit_each(fresh(), x, val, epochs, batch),
            "fit_group": lambda: fit_fused(fresh(), x, val, epochs, batch),
        },
        k * epochs * len(x),
        max(1, repeats // 2),
    )
    return {
        "small_fused_vs_minimal": rates["fused"] / rates["minimal"],
        "small_fused_vs_minimal_cpu": rates["fused_cpu"] / rates["minimal_cpu"],
        "small_fused_vs_minimal_fa": rates["fused"] / rates["minimal_fa"],
        "small_fit_group_vs_fit": full["fit_group"] / full["fit"],
    }


def mnist_rows(n_rows: int) -> tuple[torch.Tensor, str]:
    try:
        from lpae.data import load

        x = load("mnist").x.reshape(-1, 784)[:n_rows] / 255.0
        return torch.from_numpy(x.astype(np.float32)), "mnist"
    except (ValueError, ImportError):
        generator = torch.Generator().manual_seed(0)
        return torch.rand(n_rows, 784, generator=generator), "random"


def mnist_case(repeats: int) -> dict[str, float]:
    k, epochs, batch = 8, 1, 256
    x, source = mnist_rows(4096)
    print(f"mnist case on {source} data, {len(x)} rows")

    def fresh() -> list[Autoencoder]:
        return build(k, 784, (512, 256), 32)

    rates = compare(
        "mnist",
        {
            "minimal": lambda: minimal_loop(fresh(), x, epochs, batch),
            "minimal_fa": lambda: minimal_loop(fresh(), x, epochs, batch, fused_adam=True),
            "fused": lambda: fused_loop(fresh(), x, epochs, batch),
        },
        k * epochs * len(x),
        repeats,
    )
    return {
        "mnist_fused_vs_minimal": rates["fused"] / rates["minimal"],
        "mnist_fused_vs_minimal_cpu": rates["fused_cpu"] / rates["minimal_cpu"],
        "mnist_fused_vs_minimal_fa": rates["fused"] / rates["minimal_fa"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", choices=("all", "small", "mnist"), default="all")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ratios: dict[str, float] = {}
    if args.case in ("all", "small"):
        ratios.update(small_case(args.repeats))
    if args.case in ("all", "mnist"):
        ratios.update(mnist_case(args.repeats))
    ratios["threads"] = args.threads
    ratios["load_avg"] = os.getloadavg()[0]
    print("RESULT " + " ".join(f"{key}={value:.2f}" for key, value in ratios.items()))


if __name__ == "__main__":
    main()
