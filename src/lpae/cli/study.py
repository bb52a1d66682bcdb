"""`lpae study`, `lpae study export` and `lpae report`: thin adapters over lpae.study."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from lpae.cli.app import app, fail, flag, stop_interrupted
from lpae.cli.show import console
from lpae.interrupt import Interrupted, interruptible


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
    threads: int | None = typer.Option(
        None, help="torch threads per worker (default: cores // workers; on a joined Ray cluster: what fits)"
    ),
    fuse: bool = typer.Option(
        True, help="train groups of same-shaped runs as one batched model (lpae.fused)"
    ),
    resume: bool = typer.Option(False, help="continue the study in --out (and add this grid's runs to it)"),
    retry_failed: bool = typer.Option(False, help="train failed runs again"),
    discard_stale: bool = typer.Option(
        False, help="delete the runs of data files changed since they were trained, and train them anew"
    ),
    report: bool = typer.Option(True, help="write report.html and report.md at the end"),
    quiet: bool = typer.Option(False, help="no live display"),
    track: str | None = typer.Option(
        None,
        help="also log every run to an experiment tracker, in an experiment named after the study: "
        "mlflow or tensorboard (docs/tracking.md)",
    ),
    track_uri: str | None = typer.Option(
        None,
        help="with --track: an MLflow tracking URI, or a TensorBoard log folder (default: a store in --out)",
    ),
) -> None:
    """Run a study (the default command): train what is unfinished, record it, write the report."""
    from lpae.study import load_grid, run_study, stored_grid
    from lpae.study.progress import StudyProgress, progress_for
    from lpae.study.store import STORE_NAME
    from lpae.tracking import tracking_option

    tracking = tracking_option(track, track_uri)  # a missing package is an error before anything runs
    again = {
        "workers": workers,
        "executor": executor,
        "ray_address": ray_address,
        "threads": threads,
        "track": track,
        "track_uri": track_uri,
    }
    switches = {"fuse": fuse, "retry_failed": retry_failed, "report": report, "quiet": quiet}
    try:
        with interruptible():  # reading a grid fingerprints its files: that may take a while too
            if grid is None and resume and out is not None and (out / STORE_NAME).is_file():
                plan = stored_grid(out)
            else:
                plan = load_grid(grid or "quick")
            out = out if out is not None else Path("studies") / plan.name
            for note in plan.notes:
                console.print(f"[yellow]note[/yellow]: {note}")
            progress: StudyProgress = StudyProgress() if quiet else progress_for()
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
                discard_stale=discard_stale,
                tracking=tracking,
            )
    except Interrupted as error:
        command = resume_command(out, again, switches, (grid, resume))
        stop_interrupted(error, finished_runs(out), command)
    counts = result.counts
    console.print(
        f"study {plan.name}: {result.trained} runs trained, {result.skipped} already finished; "
        f"{counts['done']} done, {counts['diverged']} diverged, {counts['failed']} failed"
    )
    if result.report is not None:
        console.print(f"report: {result.report}")
        console.print(f"summary: {result.report.with_suffix('.md')}")
    if result.tracked is not None:
        console.print(f"tracked: {result.tracked}", highlight=False, soft_wrap=True)
    if counts["failed"]:
        total = sum(counts.values())
        fail(
            f"{counts['failed']} of {total} runs failed (their errors: `lpae study export {out}`, "
            f"column error); fix the cause and retry them with `lpae study --resume --out {out} "
            "--retry-failed`",
            1,
        )


STUDY_DEFAULTS: dict[str, Any] = {
    "workers": 1,
    "executor": "local",
    "ray_address": None,
    "threads": None,
    "fuse": True,
    "retry_failed": False,
    "report": True,
    "quiet": False,
    "track": None,
    "track_uri": None,
}


def resume_command(
    out: Path | None, values: dict[str, Any], switches: dict[str, bool], given: tuple[str | None, bool]
) -> str:
    """The command that continues an interrupted study with the same execution options:
    `lpae study --resume --out OUT ...` once its store exists (the stored grid: no grid argument
    needed), else the command as given (``given``: its grid argument and --resume)."""
    from lpae.study.store import STORE_NAME

    grid, resume = given
    if out is not None and (out / STORE_NAME).is_file():
        parts = ["lpae", "study", "--resume", "--out", str(out)]
    else:
        parts = ["lpae", "study", *([grid] if grid else []), *(["--out", str(out)] if out else [])]
        parts += ["--resume"] if resume else []
    for name, value in values.items():
        if value != STUDY_DEFAULTS[name]:
            parts += [flag(name), str(value)]
    for name, on in switches.items():
        if on != STUDY_DEFAULTS[name]:
            parts.append(flag(name) if on else flag(f"no_{name}"))
    return shlex.join(parts)


def finished_runs(out: Path | None) -> str:
    """'3 of 8 runs finished (3 done, 0 diverged, 0 failed)', read from the study's store."""
    from lpae.study.store import STORE_NAME, Store

    if out is None or not (out / STORE_NAME).is_file():
        return "no run finished"
    with Store(out, create=False) as store:
        counts = store.counts()
    finished = counts["done"] + counts["diverged"] + counts["failed"]
    return (
        f"{finished} of {sum(counts.values())} runs finished ({counts['done']} done, "
        f"{counts['diverged']} diverged, {counts['failed']} failed)"
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
