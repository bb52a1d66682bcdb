"""`lpae contrast`: distance concentration in three modes (synthetic, data, latent)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from lpae.cli.app import app, parse_int_list
from lpae.cli.show import console
from lpae.cli.tables import Col, show_table

SYNTHETIC_DIMS = "2,5,10,20,50,100,200,1000"
SYNTHETIC_K = "0.1,0.3,0.5,1,2,3,inf"
DATA_K = "0.5,1,2"

# Options that belong to one mode only: name -> the modes that accept it.
MODE_OPTIONS = {
    "--dims": ("synthetic",),
    "--n-points": ("synthetic",),
    "--trials": ("synthetic",),
    "--query": ("synthetic",),
    "--fit-from": ("synthetic",),
    "--preprocess": ("data",),
    "--max-points": ("data",),
    "--neighbors": ("data", "latent"),
    "--bootstrap": ("data", "latent"),
}


@app.command()
def contrast(
    distribution: str | None = typer.Option(None, help="synthetic mode: uniform or normal"),
    data: str | None = typer.Option(None, help="data mode: a data set spec, e.g. digits"),
    run: Path | None = typer.Option(None, help="latent mode: a run directory written by `lpae train`"),
    k: str | None = typer.Option(
        None, help=f"k values, > 0 or inf (default: {SYNTHETIC_K} for synthetic, {DATA_K} otherwise)"
    ),
    dims: str | None = typer.Option(None, help=f"synthetic: dimensions (default: {SYNTHETIC_DIMS})"),
    n_points: int | None = typer.Option(None, help="synthetic: points per trial, at least 2 (default: 1000)"),
    trials: int | None = typer.Option(None, help="synthetic: trials per dimension (default: 20)"),
    query: str | None = typer.Option(
        None, help="synthetic: origin, or point: a random point (default: origin)"
    ),
    fit_from: int | None = typer.Option(None, help="synthetic: fit exponents over d >= this (default: 10)"),
    preprocess: str | None = typer.Option(None, help="data: standard, minmax or none (default: standard)"),
    max_points: str | None = typer.Option(
        None,
        help="data: analyse a seeded random subset of this many rows, or all (default: 20000; every "
        "row is compared with every other, so the time grows with the square of the rows)",
    ),
    neighbors: int | None = typer.Option(
        None, help="data, latent: L nearest neighbours for class agreement; 0 skips it (default: 10)"
    ),
    bootstrap: int | None = typer.Option(None, help="data, latent: bootstrap resamples (default: 2000)"),
    seed: int = typer.Option(0, help="random seed (synthetic data, subsets, bootstrap)"),
    json_path: Path | None = typer.Option(None, "--json", help="write the report to this JSON file"),
    plot_path: Path | None = typer.Option(None, "--plot", help="draw the report to this PNG file"),
) -> None:
    """Relative contrast and nearest-neighbour class agreement of L_k distances."""
    chosen = [name for name, value in (("synthetic", distribution), ("data", data), ("latent", run)) if value]
    if len(chosen) != 1:
        raise ValueError("choose exactly one mode: --distribution (synthetic), --data SPEC, or --run RUN_DIR")
    mode = chosen[0]
    given = {
        "--dims": dims,
        "--n-points": n_points,
        "--trials": trials,
        "--query": query,
        "--fit-from": fit_from,
        "--preprocess": preprocess,
        "--max-points": max_points,
        "--neighbors": neighbors,
        "--bootstrap": bootstrap,
    }
    for option, value in given.items():
        if value is not None and mode not in MODE_OPTIONS[option]:
            modes = " and ".join(MODE_OPTIONS[option])
            raise ValueError(f"{option} applies to {modes} mode only, not to {mode} mode")
    for option, path in (("--json", json_path), ("--plot", plot_path)):
        if path is not None and not path.parent.is_dir():
            raise ValueError(f"{option}: folder {path.parent} does not exist")
    if neighbors is not None and neighbors < 0:
        raise ValueError(f"--neighbors must be 0 or more, got {neighbors}")

    from lpae.atomic import write_json
    from lpae.contrast import data_contrast, latent_contrast, parse_k_values, synthetic_contrast

    report: dict[str, Any]
    if mode == "synthetic":
        report = synthetic_contrast(
            distribution=str(distribution),
            dims=parse_int_list(SYNTHETIC_DIMS if dims is None else dims, "--dims"),
            ks=parse_k_values(SYNTHETIC_K if k is None else k),
            n_points=1000 if n_points is None else n_points,
            trials=20 if trials is None else trials,
            query="origin" if query is None else query,
            seed=seed,
            fit_from=10 if fit_from is None else fit_from,
        )
    elif mode == "data":
        report = data_contrast(
            str(data),
            parse_k_values(DATA_K if k is None else k),
            preprocess="standard" if preprocess is None else preprocess,
            n_neighbors=10 if neighbors is None else neighbors,
            n_bootstrap=2000 if bootstrap is None else bootstrap,
            max_points=parse_max_points(max_points),
            seed=seed,
        )
    else:
        report = latent_contrast(
            Path(str(run)),
            parse_k_values(DATA_K if k is None else k),
            n_neighbors=10 if neighbors is None else neighbors,
            n_bootstrap=2000 if bootstrap is None else bootstrap,
            seed=seed,
        )

    show(report)
    note = subset_note(report)
    if note is not None:
        console.print(note, highlight=False, soft_wrap=True)
    if json_path is not None:
        write_json(json_path, json_safe(report))
    if plot_path is not None:
        from lpae.contrast.plot import plot_report  # matplotlib only when a plot is asked for

        plot_report(report, plot_path)


def parse_max_points(text: str | None) -> int | None:
    """--max-points: a number of rows, all (None: every row), or the default subset size."""
    from lpae.contrast.data import DEFAULT_MAX_POINTS

    if text is None:
        return DEFAULT_MAX_POINTS
    if text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--max-points must be a number of rows or all, got {text!r}") from None


def subset_note(report: dict[str, Any]) -> str | None:
    """The one line saying a data-mode report analysed a subset, and what all rows would cost."""
    estimate = report.get("full_seconds_estimate")
    if estimate is None:
        return None
    from lpae.plain_progress import duration

    return (
        f"contrast: analysed a seeded random subset of {report['n_points']:,} of {report['n_rows']:,} "
        f"rows in {report['seconds']:.1f} s; every row (--max-points all) would take about "
        f"{duration(estimate)} (the cost grows with the square of the rows)"
    )


def json_safe(value: Any) -> Any:
    """Replace non-finite floats by None so the file is strict JSON (k = inf is already "inf")."""
    if isinstance(value, dict):
        return {key: json_safe(v) for key, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def k_name(k: float | str) -> str:
    from lpae.contrast import k_label

    return k_label(math.inf if k == "inf" else float(k))


def pm(mean: float | None, se: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.3g}" if se is None else f"{mean:.3g} ±{se:.1g}"


def quartiles(row: dict[str, Any]) -> str:
    if row["rel_contrast_median"] is None:
        return "-"
    return f"{row['rel_contrast_median']:.3g} [{row['rel_contrast_q25']:.3g}, {row['rel_contrast_q75']:.3g}]"


def show(report: dict[str, Any]) -> None:
    if report["mode"] == "synthetic":
        show_synthetic(report)
    elif report["mode"] == "data":
        show_data(report, f"{report['data']} ({report['preprocess']})")
    else:
        show_data(report["latent"], f"{report['run']}: latent codes of the test split")
        show_data(report["raw"], f"{report['run']}: raw features of the test split")
        for row in report.get("latent_vs_raw", []):
            console.print(row["summary"])


def show_synthetic(report: dict[str, Any]) -> None:
    ks = report["k"]
    below = {row["d"]: row["fraction"] for row in report.get("l2_below_l1", [])}
    for key, what in (
        ("rel_contrast", "relative contrast (Dmax - Dmin) / Dmin"),
        ("abs_contrast", "Dmax - Dmin"),
    ):
        title = (
            f"{what}: {report['distribution']} data, {report['query']} query, "
            f"N={report['n_points']}, {report['trials']} trials (mean ± s.e.)"
        )
        columns = [Col("d", key=True, justify="right"), *(Col(k_name(k), justify="right") for k in ks)]
        if key == "rel_contrast" and below:
            columns.append(Col("P(RC2 < RC1)", justify="right"))
        rows = []
        for d in report["dims"]:
            cells = {r["k"]: pm(r[key], r[f"{key}_se"]) for r in report["rows"] if r["d"] == d}
            extra = [f"{below[d]:.2f}"] if key == "rel_contrast" and below else []
            rows.append([str(d), *[cells[k] for k in ks], *extra])
        show_table(console, title, columns, rows, split=True)
    names = ("k", "dims", "Dmax - Dmin", "theory 1/k - 1/2", "relative", "theory")
    columns = [Col(name, key=name == "k", justify="right") for name in names]
    rows = []
    for fit in report["fits"]:
        dims = f"{fit['dims'][0]}..{fit['dims'][-1]}" if fit["dims"] else "-"
        rows.append(
            [
                k_name(fit["k"]),
                dims,
                pm(fit["exponent"], fit["exponent_se"]),
                "-" if fit["theory"] is None else f"{fit['theory']:.3g}",
                pm(fit["rel_exponent"], fit["rel_exponent_se"]),
                "-" if fit["rel_theory"] is None else f"{fit['rel_theory']:.3g}",
            ]
        )
    show_table(
        console, "growth exponents in d (least-squares slope on log-log axes)", columns, rows, split=True
    )


def show_data(part: dict[str, Any], title: str) -> None:
    columns = [
        Col("k", key=True),
        Col("RC mean ± s.e.", justify="right"),
        Col("RC median [q25, q75]", justify="right"),
    ]
    agreement = {a["k"]: a for a in part.get("agreement", [])}
    if agreement:
        columns += [
            Col(f"agreement of {part['neighbors']} NN [95% CI]", justify="right"),
            Col("count / total", justify="right"),
        ]
    rows = []
    for row in part["rows"]:
        cells = [
            k_name(row["k"]),
            pm(row["rel_contrast"], row["rel_contrast_se"]),
            quartiles(row),
        ]
        if agreement:
            a = agreement[row["k"]]
            cells += [
                f"{a['fraction']:.4f} [{a['ci_low']:.4f}, {a['ci_high']:.4f}]",
                f"{a['count']} / {a['total']}",
            ]
        rows.append(cells)
    show_table(console, f"{title}: N={part['n_points']}, d={part['n_features']}", columns, rows, split=True)
    for row in part["rows"]:
        if row["n_zero_dmin"]:
            duplicates = row["n_zero_dmin"]
            console.print(
                f"{k_name(row['k'])}: {duplicates} queries have a duplicate (Dmin = 0), left out of RC"
            )
    for comparison in part.get("comparisons", []):
        console.print(comparison["summary"])
