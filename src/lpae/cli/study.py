"""`lpae study`, `lpae study export` and `lpae report`: thin adapters over lpae.study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from lpae.cli.app import app, fail
from lpae.cli.show import console


class DefaultToRun(TyperGroup):
    """`lpae study ARGS` means `lpae study run ARGS` unless ARGS start with a subcommand or --help."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage("lpae study", "[quick|full|GRID.toml] [OPTIONS] | export DIR [OPTIONS]")

    def list_commands(self, ctx: Any) -> list[str]:
        return ["run", "export"]


study_app = typer.Typer(
    cls=DefaultToRun,
    help="Train a grid of data sets x criteria x models x seeds into a results store, then write its report.",
    add_completion=False,
)
app.add_typer(study_app, name="study")


@study_app.command("run")
def study_run(
    grid: str | None = typer.Argument(
        None, help="preset (quick, full) or a TOML grid file; default quick, or the stored grid with --resume"
    ),
    out: Path | None = typer.Option(None, help="study folder (default studies/NAME)"),
    workers: int = typer.Option(
        1, help="runs at a time (local processes, or the size of a local Ray cluster)"
    ),
    executor: str = typer.Option("local", help="local or ray"),
    ray_address: str | None = typer.Option(
        None, help="address of a running Ray cluster (default: start a local one)"
    ),
    threads: int | None = typer.Option(None, help="torch threads per worker (default: cores // workers)"),
    fuse: bool = typer.Option(
        True, help="train groups of same-shaped runs as one batched model (lpae.fused)"
    ),
    resume: bool = typer.Option(False, help="continue the study in --out (and add this grid's runs to it)"),
    retry_failed: bool = typer.Option(False, help="train failed runs again"),
    report: bool = typer.Option(True, help="write report.html and report.md at the end"),
    quiet: bool = typer.Option(False, help="no live display"),
) -> None:
    """Run a study (the default command): train what is unfinished, record it, write the report."""
    from lpae.study import load_grid, run_study, stored_grid
    from lpae.study.progress import RichProgress, StudyProgress
    from lpae.study.store import STORE_NAME

    if grid is None and resume and out is not None and (out / STORE_NAME).is_file():
        plan = stored_grid(out)
    else:
        plan = load_grid(grid or "quick")
    out = out if out is not None else Path("studies") / plan.name
    for note in plan.notes:
        console.print(f"[yellow]note[/yellow]: {note}")
    progress: StudyProgress = StudyProgress() if quiet else RichProgress()
    result = run_study(
        plan,
        out,
        workers,
        executor,
        ray_address,
        resume=resume,
        retry_failed=retry_failed,
        progress=progress,
        report=report,
        threads=threads,
        fuse=fuse,
    )
    counts = result.counts
    console.print(
        f"study {plan.name}: {result.trained} runs trained, {result.skipped} already finished; "
        f"{counts['done']} done, {counts['diverged']} diverged, {counts['failed']} failed"
    )
    if result.report is not None:
        console.print(f"report: {result.report}")
        console.print(f"summary: {result.report.with_suffix('.md')}")
    if counts["failed"]:
        total = sum(counts.values())
        fail(
            f"{counts['failed']} of {total} runs failed (their errors: `lpae study export {out}`, "
            f"column error); fix the cause and retry them with `lpae study --resume --out {out} "
            "--retry-failed`",
            1,
        )


@study_app.command("export")
def study_export(
    study_dir: Path = typer.Argument(..., help="a study folder"),
    format: str = typer.Option("csv", "--format", help="csv or parquet"),
    output: Path | None = typer.Option(None, "--output", help="file to write (default DIR/results.FORMAT)"),
) -> None:
    """Write the study as a tidy table: one row per run, one column per setting and per metric."""
    from lpae.study import export_table

    path = export_table(study_dir, format, output)
    console.print(f"wrote {path}")


@app.command("report")
def report_command(study_dir: Path = typer.Argument(..., help="a study folder")) -> None:
    """Write report.html (self-contained) and report.md for a study folder."""
    from lpae.study.report import write_report  # matplotlib and friends: only when reporting

    path = write_report(study_dir)
    console.print(f"report: {path}")
    console.print(f"summary: {path.with_suffix('.md')}")
