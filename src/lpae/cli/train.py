"""`lpae train`: one run, with a progress bar, resumable, exit code 3 when training diverges."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lpae.cli.app import EXIT_DIVERGED, app, fail, parse_int_list
from lpae.cli.show import console, metrics_table

if TYPE_CHECKING:
    from lpae.train import EpochCallback


@contextmanager
def progress_bar(enabled: bool, epochs: int) -> Iterator[EpochCallback | None]:
    """A rich bar advanced once per epoch with loss and samples/s; None when disabled."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("epoch {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("val {task.fields[val]}"),
        TextColumn("{task.fields[rate]} samples/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("train", total=epochs, loss="-", val="-", rate="-")

        def on_epoch(record: dict[str, float]) -> None:
            bar.update(
                task,
                completed=int(record["epoch"]),
                loss=f"{record['train_loss']:.5g}",
                val=f"{record['val_loss']:.5g}",
                rate=f"{record['samples_per_s']:,.0f}",
            )

        yield on_epoch


@app.command()
def train(
    data: str = typer.Option("digits", help="data set spec, e.g. digits (see `lpae datasets`)"),
    loss: str = typer.Option("l2", help="criterion spec, e.g. lp:0.5 (see `lpae losses`)"),
    out: Path = typer.Option(..., help="run directory to create"),
    model: str = typer.Option("ae", help="ae, dae (denoising) or vae"),
    arch: str = typer.Option("auto", help="mlp, conv, or auto (conv for C x H x W images)"),
    hidden: str = typer.Option(
        "", help="hidden sizes (mlp) or channels (conv), comma-separated; default mlp 256,128, conv 32,64"
    ),
    latent: int = typer.Option(16, help="latent code size"),
    activation: str = typer.Option("relu", help="relu, gelu, elu, tanh or silu"),
    corruption: str | None = typer.Option(
        None, help="dae input corruption: gaussian:std=S, mask:rate=R or saltpepper:rate=R (gaussian:std=0.1)"
    ),
    beta: float = typer.Option(1.0, help="vae: weight of the KL term"),
    kl_warmup: int = typer.Option(0, help="vae: epochs over which the KL weight ramps up to beta"),
    epochs: int = typer.Option(20, help="training epochs"),
    lr: float = typer.Option(1e-3, help="learning rate"),
    batch_size: int = typer.Option(128, help="batch size"),
    optimizer: str = typer.Option("adam", help="adam or adamw"),
    weight_decay: float = typer.Option(0.0, help="weight decay (decoupled with adamw)"),
    schedule: str = typer.Option("none", help="learning-rate schedule: none or cosine"),
    clip: float | None = typer.Option(None, help="clip the global gradient norm to this value"),
    patience: int | None = typer.Option(None, help="early-stopping patience in epochs (off by default)"),
    seed: int = typer.Option(0, help="random seed (weights, shuffling, noise, split)"),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda"),
    checkpoint_every: int = typer.Option(1, help="epochs between checkpoints in OUT.partial (0: none)"),
    resume: bool = typer.Option(False, help="continue an interrupted run from its checkpoint in OUT.partial"),
    quiet: bool = typer.Option(False, help="no progress bar and no metrics table"),
    preprocess: str = typer.Option("auto", help="standard, minmax, none, or auto (follows the criterion)"),
    nan: str = typer.Option("error", help="NaN or infinite values in a data file: error, or drop those rows"),
    image_size: int | None = typer.Option(None, help="resize image data to N x N (needed for mixed sizes)"),
    normal_classes: str | None = typer.Option(
        None, help="one-class protocol: train and validate on these classes only, e.g. 0,1,4"
    ),
    contaminate: float = typer.Option(
        0.0, help="replace this fraction of training rows by gross outliers (seeded by --seed)"
    ),
    overwrite: bool = typer.Option(False, help="replace an existing run directory"),
) -> None:
    """Train one autoencoder and write its run directory."""
    from lpae.experiment import RunSpec, train_run
    from lpae.models import ModelSettings
    from lpae.protocol import parse_classes
    from lpae.train import TrainSettings

    spec = RunSpec(
        data=data,
        loss=loss,
        model=ModelSettings(
            model=model,
            arch=arch,
            hidden=parse_int_list(hidden, "--hidden") if hidden.strip() else None,
            latent=latent,
            activation=activation,
            corruption=corruption,
            beta=beta,
            kl_warmup=kl_warmup,
        ),
        train=TrainSettings(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            weight_decay=weight_decay,
            patience=patience,
            optimizer=optimizer,
            schedule=schedule,
            clip=clip,
            checkpoint_every=checkpoint_every,
            device=device,
        ),
        preprocess=preprocess,
        nan=nan,
        image_size=image_size,
        split_seed=seed,
        normal_classes=parse_classes(normal_classes),
        contaminate=contaminate,
    )
    show = not quiet and sys.stdout.isatty()
    with progress_bar(show, epochs) as on_epoch:
        metrics = train_run(spec, out, overwrite=overwrite, resume=resume, on_epoch=on_epoch)
    if not quiet:
        console.print(metrics_table(metrics, f"{out} ({spec.loss} on {spec.data})"))
    if metrics["status"] == "diverged":
        # fail() exits through SystemExit: a typer.Exit code would be swallowed in non-standalone mode.
        fail(
            f"training diverged: {metrics.get('reason', '')}; {out} keeps the last finite best weights "
            "(try a smaller --lr, or --clip)",
            EXIT_DIVERGED,
        )
