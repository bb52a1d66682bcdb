"""`lpae train`."""

from __future__ import annotations

from pathlib import Path

import typer

from lpae.cli.app import EXIT_DIVERGED, app, parse_int_list
from lpae.cli.show import console, metrics_table
from lpae.experiment import RunSpec, train_run
from lpae.models import ModelSettings
from lpae.train import TrainSettings


@app.command()
def train(
    data: str = typer.Option("digits", help="data set spec, e.g. digits"),
    loss: str = typer.Option("l2", help="criterion spec, e.g. lp:0.5 (see `lpae losses`)"),
    out: Path = typer.Option(..., help="run directory to create"),
    model: str = typer.Option("ae", help="ae"),
    arch: str = typer.Option("mlp", help="mlp"),
    hidden: str = typer.Option("256,128", help="hidden layer sizes, comma-separated"),
    latent: int = typer.Option(16, help="latent code size"),
    activation: str = typer.Option("relu", help="relu, gelu, elu, tanh or silu"),
    epochs: int = typer.Option(20, help="training epochs"),
    lr: float = typer.Option(1e-3, help="learning rate"),
    batch_size: int = typer.Option(128, help="batch size"),
    patience: int | None = typer.Option(None, help="early-stopping patience in epochs (off by default)"),
    seed: int = typer.Option(0, help="random seed (weights, shuffling, split)"),
    preprocess: str = typer.Option("auto", help="standard, minmax, none, or auto (follows the criterion)"),
    overwrite: bool = typer.Option(False, help="replace an existing run directory"),
) -> None:
    """Train one autoencoder and write its run directory."""
    spec = RunSpec(
        data=data,
        loss=loss,
        model=ModelSettings(model, arch, parse_int_list(hidden, "--hidden"), latent, activation),
        train=TrainSettings(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, patience=patience),
        preprocess=preprocess,
        split_seed=seed,
    )
    metrics = train_run(spec, out, overwrite=overwrite)
    console.print(metrics_table(metrics, f"{out} ({spec.loss} on {spec.data})"))
    if metrics["status"] == "diverged":
        console.print(f"[red]training diverged[/red]: {metrics.get('reason', '')}")
        raise typer.Exit(EXIT_DIVERGED)
