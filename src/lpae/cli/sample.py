"""`lpae sample RUN [--n 64] --out FILE [--mean | --noise] [--seed S] [--interpolate I,J]`."""

from __future__ import annotations

from pathlib import Path

import typer

from lpae.cli.app import app


def parse_items(text: str) -> tuple[int, int]:
    """'3,17' -> (3, 17): two test items, counted from 0."""
    parts = text.split(",")
    try:
        first, last = (int(part) for part in parts)
    except ValueError:
        raise ValueError(f"--interpolate needs two test items I,J (integers from 0), got {text!r}") from None
    return first, last


@app.command("sample")
def sample_command(
    run_dir: Path = typer.Argument(..., help="a VAE run directory written by `lpae train --model vae`"),
    n: int = typer.Option(64, "--n", help="number of prior samples"),
    out: Path = typer.Option(
        ...,
        "--out",
        help="the file to write: a PNG image grid for image data, a CSV (one row per sample) for tables",
    ),
    noise: bool = typer.Option(
        False,
        "--noise/--mean",
        help="a draw from the decoder distribution p(x|z), or its mean (default); likelihood criteria only",
    ),
    seed: int = typer.Option(0, "--seed", help="seed of the prior draws (and of the decoder noise)"),
    interpolate: str | None = typer.Option(
        None,
        "--interpolate",
        help="I,J: decode 8 points on the line between the posterior means of test items I and J "
        "(instead of prior samples; --n is not used)",
    ),
) -> None:
    """Decode draws from a VAE's prior N(0, I), or a latent interpolation (docs/sample.md)."""
    from lpae.generate import check_n, interpolation, prior_samples, write_samples
    from lpae.runs import load_run

    check_n(n)
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist")
    run = load_run(run_dir)
    if interpolate is not None:
        first, last = parse_items(interpolate)
        generated = interpolation(run, first, last, seed=seed, noise=noise)
    else:
        generated = prior_samples(run, n, seed=seed, noise=noise)
    write_samples(out, generated)
    what = "decoder draws" if noise else "decoder means"
    typer.echo(f"wrote {len(generated.x)} {what} to {out}")
