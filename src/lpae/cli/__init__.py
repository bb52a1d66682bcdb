"""The `lpae` command line: a thin adapter over the library, one module per group of commands."""

from lpae.cli import advise, contrast, evaluate, listing, sample, study, train  # noqa: F401  (register their commands)
from lpae.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
