"""`lpae train`: one run, with a progress bar, resumable, exit code 3 when training diverges.

Its options are derived from the run schema (lpae.config.options("cli")): every run setting a
user may choose on the command line, with its type, default and help text, plus the command's own
``--out``, ``--resume``, ``--quiet``, ``--overwrite`` and ``--track`` / ``--track-uri`` (experiment
tracking, lpae.tracking: an output setting, so not a run setting and not in config.json).
"""

from __future__ import annotations

import inspect
import shlex
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from inspect import Parameter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from lpae.cli.app import EXIT_DIVERGED, app, fail, flag, stop_interrupted
from lpae.cli.show import console, metrics_table
from lpae.config import Option, RunSpec, options, with_options
from lpae.interrupt import Interrupted, interruptible
from lpae.plain_progress import LineRate, clock

if TYPE_CHECKING:
    from lpae.tracking import Tracking
    from lpae.train import EpochCallback


@contextmanager
def progress_bar(enabled: bool, epochs: int) -> Iterator[EpochCallback | None]:
    """Per-epoch progress: a rich bar on a terminal, plain lines otherwise (lpae.plain_progress), with
    training and validation loss, samples/s and the time left; None when disabled (--quiet)."""
    if not enabled:
        yield None
        return
    if not console.is_terminal:
        rate = LineRate(epochs)

        def on_line(record: dict[str, float]) -> None:
            epoch = int(record["epoch"])
            if rate.due(epoch):
                losses = f"train {record['train_loss']:.5g}  val {record['val_loss']:.5g}"
                console.print(
                    f"epoch {epoch}/{epochs}  {losses}  {record['samples_per_s']:,.0f} samples/s  "
                    f"{clock(rate.elapsed)} elapsed, {clock(rate.remaining(epoch))} left",
                    highlight=False,
                    soft_wrap=True,
                )

        yield on_line
        return
    columns = (
        TextColumn("epoch {task.completed}/{task.total}"),
        BarColumn(bar_width=12),
        TextColumn("loss {task.fields[loss]} val {task.fields[val]}"),
        TextColumn("{task.fields[rate]}/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("train", total=epochs, loss="-", val="-", rate="-")

        def on_epoch(record: dict[str, float]) -> None:
            bar.update(
                task,
                completed=int(record["epoch"]),
                loss=f"{record['train_loss']:.4g}",
                val=f"{record['val_loss']:.4g}",
                rate=f"{record['samples_per_s']:,.0f}",
            )

        yield on_epoch


def is_tuple(option: Option) -> bool:
    """Whether the setting holds a tuple (possibly None): tuple[int, ...] or tuple[int, ...] | None."""
    union = isinstance(option.type, types.UnionType)
    kinds = typing.get_args(option.type) if union else (option.type,)
    return any(typing.get_origin(kind) is tuple for kind in kinds)


def cli_option(option: Option) -> Parameter:
    """An ``lpae train`` option for a run setting: its name, type, default and help from lpae.config;
    tuple settings (hidden, normal_classes) are given as comma-separated integers."""
    annotation, default = option.type, option.default
    if is_tuple(option):
        annotation = str | None
        default = None if default is None else ",".join(map(str, default))
    return keyword(option.name, typer.Option(default, help=option.help), annotation)


def comma_list(option: Option, text: Any) -> Any:
    """'64,32' -> (64, 32) for tuple settings; '' -> None (the setting's default)."""
    if not isinstance(text, str) or not is_tuple(option):
        return text
    if not text.strip():
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        flag = "--" + option.name.replace("_", "-")
        raise ValueError(f"{flag} must be comma-separated integers, got {text!r}") from None


def keyword(name: str, option: Any, annotation: Any) -> Parameter:
    return Parameter(name, Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


TRACK_HELP = "also log the run to an experiment tracker: mlflow or tensorboard (docs/tracking.md)"
TRACK_URI_HELP = (
    "with --track: an MLflow tracking URI, or a TensorBoard log folder (default: a store inside --out)"
)
OUT = keyword("out", typer.Option(..., help="run directory to create"), Path)
COMMAND_FLAGS = [
    keyword(
        "resume",
        typer.Option(False, help="continue an interrupted run from its checkpoint in OUT.partial"),
        bool,
    ),
    keyword("quiet", typer.Option(False, help="no progress bar and no metrics table"), bool),
    keyword("overwrite", typer.Option(False, help="replace an existing run directory"), bool),
    keyword("track", typer.Option(None, help=TRACK_HELP), str | None),
    keyword("track_uri", typer.Option(None, help=TRACK_URI_HELP), str | None),
]


def train(**values: Any) -> None:
    """Train one autoencoder and write its run directory."""
    from lpae.experiment import train_run
    from lpae.tracking import tracking_option

    own = ("out", "resume", "quiet", "overwrite", "track", "track_uri")
    out, resume, quiet, overwrite, track, track_uri = (values.pop(name) for name in own)
    tracking = tracking_option(track, track_uri)  # a missing package is an error before training
    settings = options("cli")
    spec = with_options(
        RunSpec(), {name: comma_list(settings[name], value) for name, value in values.items()}
    )
    show = not quiet
    try:
        with interruptible(), progress_bar(show, spec.train.epochs) as on_epoch:
            metrics = train_run(spec, out, overwrite=overwrite, resume=resume, on_epoch=on_epoch)
    except Interrupted as error:
        tracked = {"track": track, "track_uri": track_uri}
        stop_interrupted(error, unfinished_run(out), resume_command(out, values, quiet, overwrite, tracked))
    if not quiet:
        console.print(metrics_table(metrics, f"{out} ({spec.loss} on {spec.data})"))
    if tracking is not None:  # a diverged run is tracked too (status FAILED in MLflow)
        log_to_tracker(tracking, out, quiet)
    if metrics["status"] == "diverged":
        # fail() exits through SystemExit: a typer.Exit code would be swallowed in non-standalone mode.
        fail(
            f"training diverged: {metrics.get('reason', '')}; {out} keeps the last finite best weights "
            "(try a smaller --lr, or --clip)",
            EXIT_DIVERGED,
        )


def log_to_tracker(tracking: Tracking, out: Path, quiet: bool) -> None:
    """Log the written run to the tracker; a failure says that the run itself is there."""
    from lpae.tracking import track_trained_run

    try:
        where = track_trained_run(tracking, out)
    except ValueError as error:
        raise ValueError(f"{error} (the run itself is written to {out})") from None
    if not quiet:
        console.print(f"tracked: {tracking.kind} {where}", highlight=False, soft_wrap=True)


def resume_command(
    out: Path,
    values: dict[str, Any],
    quiet: bool,
    overwrite: bool,
    tracked: dict[str, str | None] | None = None,
) -> str:
    """The `lpae train ... --resume` command that continues an interrupted run: its options that
    differ from their defaults, as given (``tracked``: --track and --track-uri)."""
    parts = ["lpae", "train", "--out", str(out)]
    for name, option in options("cli").items():
        value = values.get(name)
        default = cli_option(option).default.default
        if value is not None and value != default:
            parts += [flag(name), str(value)]
    for name, value in (tracked or {}).items():
        parts += [flag(name), value] if value is not None else []
    parts += ["--resume", *(["--quiet"] if quiet else []), *(["--overwrite"] if overwrite else [])]
    return shlex.join(parts)


def unfinished_run(out: Path) -> str:
    """What an interrupted `lpae train` leaves: its checkpoint, if it wrote one."""
    from lpae.experiment import CHECKPOINT_FILE
    from lpae.runs import partial_dir

    checkpoint = partial_dir(out) / CHECKPOINT_FILE
    where = f"its checkpoint is in {checkpoint.parent}" if checkpoint.is_file() else "no checkpoint yet"
    return f"0 of 1 runs done ({out} not written; {where})"


# The options are the run settings of lpae.config's CLI face, then this command's own.
PARAMETERS = [OUT, *map(cli_option, options("cli").values()), *COMMAND_FLAGS]
train.__signature__ = inspect.Signature(PARAMETERS)  # type: ignore[attr-defined]
train.__annotations__ = {p.name: p.annotation for p in PARAMETERS}
app.command()(train)
