"""`lpae advise --data SPEC [--json PATH] [--grid PATH]`: which criterion does my data want?"""

from __future__ import annotations

from pathlib import Path

import typer

from lpae.cli.app import app
from lpae.cli.show import console

DEFAULT_GRID = "advise-grid.toml"
MAX_TRAIN = 10_000  # lpae.advise.MAX_TRAIN (not imported here: the CLI imports the library lazily)


def check_parent(path: Path | None, option: str) -> None:
    if path is not None and not path.parent.is_dir():
        raise ValueError(f"{option} {path}: folder {path.parent} does not exist")


@app.command("advise")
def advise_command(
    data: str = typer.Option(
        ..., help="data set spec or file, e.g. digits or table.csv (see `lpae datasets`)"
    ),
    json_path: Path | None = typer.Option(None, "--json", help="write the advice to this JSON file"),
    grid: Path | None = typer.Option(
        None, help="write a TOML grid for `lpae study` comparing the candidates to this file"
    ),
    seed: int = typer.Option(0, help="random seed (split, weights, subsamples)"),
    epochs: int | None = typer.Option(None, help="training epochs of the quick models [about 100k samples]"),
    max_train: str = typer.Option(
        str(MAX_TRAIN),
        "--max-train",
        help="the most training rows of the quick models (a seeded subset above it), or all",
    ),
    quiet: bool = typer.Option(False, help="print nothing (use with --json)"),
) -> None:
    """Train two quick autoencoders, fit their residuals, measure distance contrast, recommend a criterion."""
    from lpae.advise import advise
    from lpae.atomic import write_json, write_text

    check_parent(json_path, "--json")
    check_parent(grid, "--grid")
    rows = parse_max_train(max_train)
    result = advise(data, seed=seed, epochs=epochs, max_train=rows, grid_path=str(grid or DEFAULT_GRID))
    if json_path is not None:
        write_json(json_path, result)
    if grid is not None:
        write_text(grid, result["study_grid"])
    if quiet:
        return
    console.print(
        f"[bold]recommended:[/bold] {result['recommended']}  "
        f"({result['family']} family, evidence: {result['strength']})"
    )
    console.print(f"[bold]alternatives:[/bold] {', '.join(result['alternatives'])}")
    for reason in result["reasons"]:
        console.print(f"- {reason}", highlight=False)
    console.print(f"[dim]{result['caveat']}[/dim]")
    console.print("[bold]to confirm:[/bold]")
    console.print(f"  {result['commands']['train']}", highlight=False, soft_wrap=True)
    if grid is None:
        console.print(f"  lpae advise --data {data} --grid {DEFAULT_GRID}   (writes the study grid)")
    console.print(f"  {result['commands']['study']}", highlight=False, soft_wrap=True)
    if result["note"] is not None:
        console.print(result["note"], highlight=False, soft_wrap=True)
    console.print(f"[dim]advice took {result['seconds']:.1f} s[/dim]")


def parse_max_train(text: str) -> int | None:
    """--max-train: a number of rows, or all (None: every training row)."""
    if text.strip() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--max-train must be a number of rows or all, got {text!r}") from None
