"""`lpae eval`."""

from __future__ import annotations

from pathlib import Path

import typer

from lpae.cli.app import app
from lpae.cli.show import console, metrics_table
from lpae.metrics import evaluate
from lpae.runs import load_run, read_json, write_json


@app.command("eval")
def eval_command(
    run_dir: Path = typer.Argument(..., help="a run directory written by `lpae train`"),
    json_path: Path | None = typer.Option(None, "--json", help="also write the metrics to this JSON file"),
) -> None:
    """Rebuild a trained model from its run directory and recompute its test metrics."""
    run = load_run(run_dir)
    metrics = evaluate(run)
    stored = read_json(run_dir / "metrics.json")
    stored.update(metrics)
    write_json(run_dir / "metrics.json", stored)
    if json_path is not None:
        write_json(json_path, metrics)
    console.print(metrics_table(metrics, str(run_dir)))
