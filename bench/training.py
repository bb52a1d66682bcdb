"""Training throughput of lpae.train.fit against a minimal hand-written PyTorch loop (and pythae).

Two cases, each with the same model, data, batch size, optimiser (Adam, lr 1e-3) and loss
(lp:2 = sum of squared errors per sample, batch mean):

- mnist: MLP autoencoder 784-512-256-32 at batch 256 on MNIST (real MNIST when lpae's loader has
  it installed, else uniform random data of the same size). Target: fit >= 0.95x the minimal loop.
- tabular: MLP autoencoder 30-64-32-4 at batch 64 on breast_cancer-sized random data, where the
  per-step Python overhead dominates. Target: fit >= 0.9x the minimal loop.

Contestants alternate within one run, each training ``--epochs`` epochs from a fresh model per
round; throughput = training samples x epochs / wall seconds, median over rounds. ``fit`` runs
as a user calls it: per-epoch validation, history and best-weight snapshots included, on a
validation set of 15 % of the data (the default split) capped at ``--val-rows`` (256) rows, so that
the figure is training throughput; ``fit+val15`` repeats it with the uncapped validation set, and
``loop+fused`` is the minimal loop with PyTorch's fused Adam kernel, which fit uses. pythae's
TrainingPipeline (mnist case only, when ``pip install --no-deps pythae`` is present; it is never
a dependency) trains the same encoder and decoder with its AE model and "mse" loss.

Run from the repository root: ``.venv/bin/python bench/training.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lpae import criteria
from lpae.config import ModelSettings, TrainSettings
from lpae.models import build_model, mlp
from lpae.train import fit


@dataclass
class Case:
    name: str
    n_features: int
    hidden: tuple[int, ...]
    latent: int
    batch_size: int
    n_samples: int
    epochs: int  # per contestant and round, so that a round lasts long enough to time
    target: float


CASES = {
    "mnist": Case("mnist", 784, (512, 256), 32, 256, 60000, 1, 0.95),
    # breast_cancer's training split: 455 rows, 8 steps an epoch, so 40 epochs a round
    "tabular": Case("tabular", 30, (64, 32), 4, 64, 455, 40, 0.9),
}


def case_data(case: Case, n_samples: int) -> tuple[torch.Tensor, str]:
    """(N, D) float32 training rows: real MNIST scaled to [0, 1] where installed, else uniform."""
    if case.name == "mnist":
        from lpae.data import load, missing_requirement

        if missing_requirement("mnist") is None:
            images = load("mnist").x[:n_samples]  # fewer rows than asked when the set is smaller
            x = torch.from_numpy(images).reshape(len(images), -1)
            return (x / max(float(x.max()), 1.0)).contiguous(), "real MNIST"
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n_samples, case.n_features, generator=generator), "uniform random"


def minimal_loop(case: Case, x: torch.Tensor, epochs: int, seed: int, fused: bool = False) -> None:
    """The baseline: the same layers, Adam, shuffled slices, no validation, no bookkeeping.

    ``fused`` switches to PyTorch's fused Adam kernel, which lpae's fit uses (for reference)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        mlp([case.n_features, *case.hidden, case.latent], "relu"),
        mlp([case.latent, *reversed(case.hidden), case.n_features], "relu"),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused or None)
    for _ in range(epochs):
        shuffled = x[torch.randperm(len(x))]
        for start in range(0, len(x), case.batch_size):
            xb = shuffled[start : start + case.batch_size]
            loss = (model(xb) - xb).square().sum(dim=1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def lpae_fit(case: Case, x: torch.Tensor, x_val: torch.Tensor, epochs: int, seed: int) -> None:
    torch.manual_seed(seed)
    settings = ModelSettings(arch="mlp", hidden=case.hidden, latent=case.latent)
    model = build_model((case.n_features,), settings, criteria.build("lp:2"))
    train = TrainSettings(epochs=epochs, lr=1e-3, batch_size=case.batch_size, seed=seed, device="cpu")
    result = fit(model, x, x_val, train)
    if result.status != "done":
        raise RuntimeError(f"fit did not finish: {result.reason}")


def pythae_pipeline(case: Case, x: torch.Tensor, x_val: torch.Tensor, epochs: int, seed: int) -> None:
    from pythae.models import AE, AEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp([case.n_features, *case.hidden, case.latent], "relu")

        def forward(self, x: torch.Tensor) -> ModelOutput:
            return ModelOutput(embedding=self.net(x.reshape(len(x), -1)))

    class Decoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp([case.latent, *reversed(case.hidden), case.n_features], "relu")

        def forward(self, z: torch.Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=self.net(z))

    torch.manual_seed(seed)
    model = AE(
        AEConfig(input_dim=(case.n_features,), latent_dim=case.latent, reconstruction_loss="mse"),
        encoder=Encoder(),
        decoder=Decoder(),
    )
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.ERROR)  # no per-epoch log lines
    with tempfile.TemporaryDirectory() as folder:
        config = BaseTrainerConfig(
            output_dir=folder,
            num_epochs=epochs,
            learning_rate=1e-3,
            per_device_train_batch_size=case.batch_size,
            per_device_eval_batch_size=case.batch_size,
            optimizer_cls="Adam",
            no_cuda=True,
            seed=seed,
        )
        with (
            open(os.devnull, "w") as quiet,
            contextlib.redirect_stderr(quiet),
            contextlib.redirect_stdout(quiet),
        ):
            TrainingPipeline(training_config=config, model=model)(train_data=x, eval_data=x_val)


def timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench_case(case: Case, args: argparse.Namespace) -> dict[str, float]:
    n_samples = (args.samples if case.name == "mnist" else 0) or case.n_samples
    epochs = args.epochs or case.epochs
    x, source = case_data(case, n_samples + max(args.val_rows, int(0.15 * n_samples / 0.7)))
    if len(x) < n_samples + args.val_rows:  # a real set too small: keep the 70 : 15 proportion
        n_samples = int(len(x) * 0.7 / 0.85)
    x_train, x_rest = x[:n_samples], x[n_samples:]
    x_val15 = x_rest[: int(0.15 * n_samples / 0.7)]  # 15 % of the data next to a 70 % training split
    x_small_val = x_val15[: args.val_rows]
    contestants: dict[str, Callable[[int], None]] = {
        "loop": lambda seed: minimal_loop(case, x_train, epochs, seed),
        "fit": lambda seed: lpae_fit(case, x_train, x_small_val, epochs, seed),
        "loop+fused": lambda seed: minimal_loop(case, x_train, epochs, seed, fused=True),
    }
    if len(x_val15) > len(x_small_val):
        contestants["fit+val15"] = lambda seed: lpae_fit(case, x_train, x_val15, epochs, seed)
    if case.name == "mnist" and importlib.util.find_spec("pythae") is not None:
        contestants["pythae"] = lambda seed: pythae_pipeline(case, x_train, x_small_val, epochs, seed)
    elif case.name == "mnist":
        print("pythae is not installed: skipping it (`make bench-deps` installs it)")
    print(
        f"\n{case.name}: {source}, {n_samples} x {case.n_features}, MLP "
        f"{'-'.join(map(str, [case.n_features, *case.hidden, case.latent]))}, batch {case.batch_size}, "
        f"{epochs} epoch(s) per round, {args.rounds} rounds"
    )
    rates: dict[str, list[float]] = {name: [] for name in contestants}
    for round_ in range(args.rounds + 1):  # round 0 warms up and is not counted
        for name, run in contestants.items():
            seconds = timed(lambda run=run, seed=round_: run(seed))
            if round_ > 0:
                rates[name].append(n_samples * epochs / seconds)
        if round_ > 0:
            print(
                f"  round {round_}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()), flush=True
            )
    median = {name: statistics.median(values) for name, values in rates.items()}
    # Ratios within a round pair contestants that ran seconds apart: robust to drifting machine load.
    paired = {
        name: statistics.median(a / b for a, b in zip(values, rates["loop"], strict=True))
        for name, values in rates.items()
    }
    for name, value in median.items():
        print(
            f"  {name:10s} median {value:12,.0f} samples/s   {value / median['loop']:.3f}x loop "
            f"(median of per-round ratios {paired[name]:.3f}x)"
        )
    out = {
        f"{case.name}_fit_ratio": median["fit"] / median["loop"],
        f"{case.name}_fit_ratio_paired": paired["fit"],
        f"{case.name}_fit_over_fused_loop": median["fit"] / median["loop+fused"],
        f"{case.name}_fit_val15_ratio": median.get("fit+val15", median["fit"]) / median["loop"],
        f"{case.name}_loop_per_s": median["loop"],
        f"{case.name}_ok": float(median["fit"] / median["loop"] >= case.target),
    }
    if "pythae" in median:
        out[f"{case.name}_fit_over_pythae"] = median["fit"] / median["pythae"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="mnist,tabular", help="comma-separated: mnist, tabular")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--epochs", type=int, default=0, help="epochs per contestant and round (default: the case's)"
    )
    parser.add_argument("--samples", type=int, default=0, help="mnist training rows (default 60000)")
    parser.add_argument("--val-rows", type=int, default=256, help="validation rows of the 'fit' contestant")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, float] = {}
    for name in args.cases.split(","):
        case = CASES[name.strip()]
        results.update(bench_case(case, args))
    print("RESULT " + " ".join(f"{key}={value:.4g}" for key, value in results.items()))


if __name__ == "__main__":
    main()
