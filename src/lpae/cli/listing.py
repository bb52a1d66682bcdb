"""`lpae losses` and `lpae datasets`: what is registered, with arguments and availability."""

from __future__ import annotations

from lpae.cli.app import app
from lpae.cli.show import console
from lpae.cli.tables import Col, show_table


@app.command()
def losses() -> None:
    """List the registered criteria: arguments with defaults and ranges, likelihood or not, support."""
    from lpae.criteria import CRITERIA, criterion_class

    rows = []
    for entry in CRITERIA.entries():
        family = criterion_class(entry.name)
        likelihood = "no: improper" if family.improper else "yes" if family.is_likelihood else "no"
        support = {"real": "real", "unit": "(0, 1)"}.get(family.support, "?")
        arguments = "; ".join(p.describe() + (f": {p.help}" if p.help else "") for p in entry.params)
        rows.append([entry.signature(), likelihood, support, entry.summary, arguments])
    columns = [
        Col("spec"),
        Col("likelihood", drop=2),
        Col("support", drop=3),
        Col("what it is", whole=False, drop=4),
        Col("arguments", whole=False, drop=1),
    ]
    show_table(console, "criteria (spec: name:arg,key=value; shown with their defaults)", columns, rows)
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

    rows = []
    for entry in DATASETS.entries():
        command = missing_requirement(entry.name)
        shape = entry.tags.get("shape")
        rows.append(
            [
                entry.signature(),
                "x".join(map(str, shape)) if shape else "varies",
                str(entry.tags.get("kind", "")),
                "yes" if entry.tags.get("labels") else "no",
                "yes"
                if command is None
                else f"no: {command}" + (" (or path=DIR)" if "files" in entry.tags else ""),
                entry.summary,
            ]
        )
    columns = [
        Col("spec"),
        Col("shape", drop=3),
        Col("kind", drop=2),
        Col("labels", drop=1),
        Col("available", whole=False, drop=5),
        Col("what it is", whole=False, drop=4),
    ]
    show_table(console, "data sets", columns, rows)
    console.print(
        "files by path: path/to/table.csv:label=COLUMN (.csv, .tsv, .parquet), data.npy, "
        "data.npz:key=x,label=y, IDX (train-images-idx3-ubyte[.gz]), or a folder of PNG/JPEG images; "
        "local copies of standard sets: cifar10:path=DIR, fashion_mnist:path=DIR, mnist:path=DIR; "
        "options: --nan error|drop, --image-size N"
    )
