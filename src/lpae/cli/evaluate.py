"""`lpae eval RUN_DIR [--data SPEC] [--json PATH]`."""

from __future__ import annotations

from pathlib import Path

import typer

from lpae.cli.app import app
from lpae.cli.show import console, metrics_table


@app.command("eval")
def eval_command(
    run_dir: Path = typer.Argument(..., help="a run directory written by `lpae train`"),
    data: str | None = typer.Option(
        None,
        "--data",
        help="score the model on this data set instead of its own (same sample shape; the run's "
        "preprocessing and split settings apply); the run's metrics.json is then left as it is",
    ),
    json_path: Path | None = typer.Option(None, "--json", help="also write the metrics to this JSON file"),
    quiet: bool = typer.Option(False, help="no metrics table"),
) -> None:
    """Rebuild a trained model from its run directory and compute every test metric (docs/metrics.md)."""
    from lpae.atomic import write_json
    from lpae.metrics import evaluate
    from lpae.runs import load_run, read_json_object

    run = load_run(run_dir)
    if json_path is not None and not json_path.parent.is_dir():
        raise ValueError(f"--json {json_path}: folder {json_path.parent} does not exist")
    if json_path is not None and json_path.is_dir():
        raise ValueError(f"--json {json_path}: is a folder; give the name of a file to write")
    metrics = evaluate(run, data=data)
    if data is None:
        stored = read_json_object(run_dir / "metrics.json")
        stored.update(metrics)
        write_json(run_dir / "metrics.json", stored)
    if json_path is not None:
        write_json(json_path, metrics)
    if not quiet:
        title = str(run_dir) if data is None else f"{run_dir} on {data}"
        console.print(metrics_table(metrics, title))
