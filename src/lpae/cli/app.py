"""The typer application and its error policy.

Bad input of any kind (a bad spec, a missing file, an invalid option value) ends with one line
on stderr, ``lpae: error: ...``, and exit code 2, never a traceback. A diverged training run
exits with code 3. A command interrupted by SIGINT or SIGTERM (lpae.interrupt) prints one line,
``lpae: interrupted by SIGINT: ...; resume with: COMMAND``, and exits with 130 or 143.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from lpae.interrupt import Interrupted

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print one error line and exit."""
    first_line = " ".join(str(message).split())
    typer.echo(f"lpae: error: {first_line}", err=True)
    sys.exit(code)


def stop_interrupted(error: Interrupted, done: str, resume: str) -> NoReturn:
    """Print the one line of an interrupted command (what is done, the command that resumes) and
    exit with 128 + the signal number."""
    typer.echo(f"lpae: interrupted by {error.name}: {done}; resume with: {resume}", err=True)
    sys.exit(error.exit_code)


def flag(name: str) -> str:
    """'batch_size' -> '--batch-size'."""
    return "--" + name.replace("_", "-")


def format_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    """Warnings meant for users (dropped columns, ...) as one plain line each, no source code."""
    text = " ".join(str(message).split())
    return f"lpae: warning: {text}\n"


class LpaeGroup(TyperGroup):
    """A click group whose ``main`` turns every user error into one line and exit code 2."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        extra.pop("standalone_mode", None)  # errors are always handled here
        # Only the formatting changes, so warnings stay catchable (warnings.catch_warnings, pytest).
        previous_format = warnings.formatwarning
        warnings.formatwarning = format_warning
        try:
            return super().main(args=args, prog_name=prog_name or "lpae", standalone_mode=False, **extra)
        except typer.Exit as stop:
            sys.exit(stop.exit_code)
        except typer.Abort:
            fail("aborted", 1)
        except typer.TyperException as error:  # usage errors and bad option values
            if type(error).__name__ == "NoArgsIsHelpError":  # help was printed; nothing failed
                sys.exit(0)
            fail(error.format_message())
        except (ValueError, TypeError, OSError) as error:
            fail(str(error))
        finally:
            warnings.formatwarning = previous_format


app = typer.Typer(
    cls=LpaeGroup,
    name="lpae",
    help="Autoencoders under any L_p loss or decoder likelihood, and the evidence for choosing one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """'256,128' -> (256, 128); '' -> ()."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None
    if any(v <= 0 for v in values):
        raise ValueError(f"{what} must be positive integers, got {text!r}")
    return values
