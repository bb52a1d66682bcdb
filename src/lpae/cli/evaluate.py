"""`lpae eval RUN_DIR [--data SPEC] [--json PATH]`."""

from __future__ import annotations

from pathlib import Path

import typer

from lpae.cli.app import app
from lpae.cli.show import console, metrics_table

DEFAULT_KNN_ROWS = "1000,5000"  # lpae.metrics.latent: KNN_QUERY_ROWS, KNN_REFERENCE_ROWS


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
    knn_rows: str = typer.Option(
        DEFAULT_KNN_ROWS,
        "--knn-rows",
        help="the most kNN queries (test rows) and kNN / probe references (training rows), QUERIES,"
        "REFERENCES, as seeded subsets; all: every row (the kNN cost grows with their product)",
    ),
    quiet: bool = typer.Option(False, help="no metrics table"),
) -> None:
    """Rebuild a trained model from its run directory and compute every test metric (docs/metrics.md)."""
    from lpae.atomic import write_json
    from lpae.metrics import evaluate
    from lpae.metrics.evaluate import load_eval_data, subset_note
    from lpae.runs import load_run, prepare_data, read_json_object

    rows = parse_knn_rows(knn_rows)
    run = load_run(run_dir)
    if json_path is not None and not json_path.parent.is_dir():
        raise ValueError(f"--json {json_path}: folder {json_path.parent} does not exist")
    if json_path is not None and json_path.is_dir():
        raise ValueError(f"--json {json_path}: is a folder; give the name of a file to write")
    prepared = prepare_data(run.config, load_eval_data(run, data))
    metrics = evaluate(run, data=data, prepared=prepared, knn_rows=rows)
    if data is None:
        stored = read_json_object(run_dir / "metrics.json")
        stored.update(metrics)
        write_json(run_dir / "metrics.json", stored)
    if json_path is not None:
        write_json(json_path, metrics)
    if not quiet:
        title = str(run_dir) if data is None else f"{run_dir} on {data}"
        console.print(metrics_table(metrics, title))
    note = subset_note(prepared, rows)
    if note is not None:
        console.print(note, highlight=False, soft_wrap=True)


def parse_knn_rows(text: str) -> tuple[int | None, int | None]:
    """--knn-rows: QUERIES,REFERENCES (each a number of rows or all), or all for every row."""
    parts = [part.strip() for part in text.split(",")]
    if parts == ["all"]:
        return None, None
    try:
        if len(parts) != 2:
            raise ValueError
        queries, references = (None if part == "all" else int(part) for part in parts)
    except ValueError:
        raise ValueError(
            f"--knn-rows must be QUERIES,REFERENCES (numbers of rows, or all) or all, got {text!r}"
        ) from None
    for size in (queries, references):
        if size is not None and size < 1:
            raise ValueError(f"--knn-rows: a number of rows must be at least 1, got {text!r}")
    return queries, references
