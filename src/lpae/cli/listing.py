"""`lpae losses` and `lpae datasets`: what is registered, with arguments and availability."""

from __future__ import annotations

from rich.table import Table

from lpae.cli.app import app
from lpae.cli.show import console


@app.command()
def losses() -> None:
    """List the registered criteria: arguments with defaults and ranges, likelihood or not, support."""
    from lpae.criteria import CRITERIA, criterion_class

    table = Table(title="criteria (spec: name:arg,key=value; shown with their defaults)")
    for column in ("spec", "likelihood", "support", "what it is", "arguments"):
        table.add_column(column)
    for entry in CRITERIA.entries():
        family = criterion_class(entry.name)
        likelihood = "no: improper" if family.improper else "yes" if family.is_likelihood else "no"
        support = {"real": "real", "unit": "(0, 1)"}.get(family.support, "?")
        arguments = "; ".join(p.describe() + (f": {p.help}" if p.help else "") for p in entry.params)
        table.add_row(entry.signature(), likelihood, support, entry.summary, arguments)
    console.print(table)
    aliases = ", ".join(f"{a} = {t}" for a, t in CRITERIA.aliases().items())
    console.print(f"aliases: {aliases}")
    console.print(
        "scale: learned = one shared scale (softplus with a soft floor at e^-6); calibrated = its "
        "maximum-likelihood value for each batch; predicted = the decoder emits one per feature"
    )


@app.command()
def datasets() -> None:
    """List the data sets with shape, kind, labels and whether each is available here."""
    from lpae.data import DATASETS, missing_requirement

    table = Table(title="data sets")
    for column in ("spec", "shape", "kind", "labels", "available", "what it is"):
        table.add_column(column)
    for entry in DATASETS.entries():
        command = missing_requirement(entry.name)
        shape = entry.tags.get("shape")
        table.add_row(
            entry.signature(),
            "x".join(map(str, shape)) if shape else "varies",
            str(entry.tags.get("kind", "")),
            "yes" if entry.tags.get("labels") else "no",
            "yes" if command is None else f"no: {command}",
            entry.summary,
        )
    console.print(table)
    console.print(
        "files by path: path/to/table.csv:label=COLUMN (.csv, .tsv, .parquet), data.npy, "
        "data.npz:key=x,label=y, IDX (train-images-idx3-ubyte[.gz]), or a folder of PNG/JPEG images; "
        "options: --nan error|drop, --image-size N"
    )
