"""The typer application and its error policy.

Bad input of any kind (a bad spec, a missing file, an invalid option value) ends with one line
on stderr, ``lpae: error: ...``, and exit code 2, never a traceback. A diverged training run
exits with code 3. A command interrupted by SIGINT or SIGTERM (lpae.interrupt) prints one line,
``lpae: interrupted by SIGINT: ...; resume with: COMMAND``, and exits with 130 or 143. Known
families of environment failures (damaged JSON or safetensors files, an unwritable study store,
memory exhaustion) are explained in one line too (:func:`explain`); any other exception is a
bug: one line saying so and exit code 1. With ``LPAE_DEBUG=1`` or ``lpae --debug COMMAND`` every
error, input errors included, raises through with its traceback.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from lpae import __version__
from lpae.interrupt import Interrupted

EXIT_BUG = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
ISSUES_URL = "the lpae issue tracker"


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


def debugging() -> bool:
    """Whether errors raise through with their traceback: LPAE_DEBUG=1 (``--debug`` sets it)."""
    return os.environ.get("LPAE_DEBUG", "") not in ("", "0")


MEMORY_WORDS = ("DefaultCPUAllocator", "out of memory", "can't allocate memory", "not enough memory")


def explain(error: BaseException) -> str | None:
    """One actionable line for a known failure of input or environment, None for anything else.

    The library names files and options where it reads them (lpae.runs, lpae.config, lpae.study);
    this is the backstop for families that can surface anywhere: damaged JSON or safetensors files,
    an unwritable or damaged study store, memory exhaustion and weights that do not fit a model.
    """
    import json
    import sqlite3

    text = " ".join(str(error).split())
    if isinstance(error, json.JSONDecodeError):
        return f"a JSON file is not valid JSON ({text}); fix or restore it"
    if type(error).__name__ == "SafetensorError":
        return f"a safetensors weights file is damaged or not one ({text}); retrain the run or restore it"
    if isinstance(error, sqlite3.OperationalError) and "readonly" in text:
        return f"the study store is read-only ({text}); make the study folder writable, or copy it"
    if isinstance(error, sqlite3.Error):
        return f"the study store (study.sqlite) cannot be used ({text}); check folder permissions and space"
    if isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and any(word in text for word in MEMORY_WORDS)
    ):
        return (
            "out of memory: the model or data set is too large for this machine; use smaller --hidden "
            "sizes, a smaller --batch-size or a smaller data set"
        )
    if isinstance(error, RuntimeError) and "Error(s) in loading state_dict" in text:
        return (
            f"the weights do not fit the model its config.json describes ({text[:160]}); the run's files "
            "come from different runs or were edited: retrain it"
        )
    if isinstance(error, KeyError):
        return (
            f"missing key {text}: a file lpae read (config.json, metrics.json, a grid) lacks it; restore "
            "the file (rerun with LPAE_DEBUG=1 if it looks like a bug)"
        )
    return None


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
            if debugging():  # where a message came from, for whoever hunts a misleading one
                raise
            fail(explain(error) or str(error))
        except Exception as error:  # the last guard: known families in one line, bugs named as bugs
            if debugging():
                raise
            known = explain(error)
            if known is not None:
                fail(known)
            fail(
                f"internal error ({type(error).__name__}: {error}); this is a bug in lpae {__version__}: "
                f"please report it at {ISSUES_URL} with the command, and rerun it with LPAE_DEBUG=1 "
                "(or --debug) for the traceback",
                EXIT_BUG,
            )
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


@app.callback()
def global_options(
    debug: bool = typer.Option(
        False, "--debug", help="show the traceback of any error (the same as LPAE_DEBUG=1)"
    ),
) -> None:
    """Options of every command."""
    if debug:
        os.environ["LPAE_DEBUG"] = "1"


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """'256,128' -> (256, 128); '' -> ()."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None
    if any(v <= 0 for v in values):
        raise ValueError(f"{what} must be positive integers, got {text!r}")
    return values
