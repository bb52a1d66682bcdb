"""PNG figures of contrast reports (matplotlib's object API, no pyplot state; written atomically).

- synthetic: absolute and relative contrast against d on log-log axes, one line per k, error
  bars of one standard error; the legend gives each fitted exponent beside 1/k - 1/2.
- data / latent: per k, the relative contrast over queries (median, quartile bars) and the
  neighbour class agreement with its 95 % bootstrap interval; latent mode draws the latent
  codes beside the raw features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from lpae.atomic import write_with


def k_name(k: float | str) -> str:
    return "Linf" if k == "inf" else f"L{float(k):g}"


def save_figure(figure: Figure, path: Path | str) -> None:
    """Save as PNG, atomically (lpae.atomic)."""
    write_with(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))


def plot_synthetic(report: dict[str, Any], path: Path | str) -> None:
    figure = Figure(figsize=(12, 4.8))
    ax_abs, ax_rel = figure.subplots(1, 2)
    fits = {f["k"]: f for f in report["fits"]}
    for k in report["k"]:
        rows = sorted((r for r in report["rows"] if r["k"] == k), key=lambda r: r["d"])
        dims = [r["d"] for r in rows]
        fit = fits.get(k, {})
        label = k_name(k)
        if fit.get("exponent") is not None:
            theory = "n/a" if fit["theory"] is None else f"{fit['theory']:.2f}"
            label += f" (slope {fit['exponent']:.2f}, theory {theory})"
        for ax, key in ((ax_abs, "abs_contrast"), (ax_rel, "rel_contrast")):
            ax.errorbar(
                dims,
                [r[key] for r in rows],
                yerr=[r[f"{key}_se"] or 0.0 for r in rows],
                marker="o",
                markersize=3,
                capsize=2,
                label=label if ax is ax_abs else k_name(k),
            )
    title = f"{report['distribution']} data, {report['query']} query, N={report['n_points']}"
    ax_abs.set_title(f"Dmax - Dmin ({title})", fontsize=10)
    ax_rel.set_title(f"(Dmax - Dmin) / Dmin, mean of {report['trials']} trials", fontsize=10)
    for ax in (ax_abs, ax_rel):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("dimension d")
        ax.grid(True, which="both", alpha=0.3)
    ax_abs.set_ylabel("absolute contrast")
    ax_rel.set_ylabel("relative contrast")
    ax_abs.legend(fontsize=8)
    ax_rel.legend(fontsize=8)
    save_figure(figure, path)


def plot_data(report: dict[str, Any], path: Path | str) -> None:
    """Data mode (one series) or latent mode (latent codes beside raw features)."""
    if report["mode"] == "latent":
        series = [("latent", report["latent"]), ("raw", report["raw"])]
        title = f"run {report['run']}"
    else:
        series = [(report["data"], report)]
        title = f"{report['data']} ({report['preprocess']})"
    has_agreement = all("agreement" in s for _, s in series)
    figure = Figure(figsize=(11 if has_agreement else 6, 4.5))
    axes = figure.subplots(1, 2 if has_agreement else 1, squeeze=False)[0]
    ax_rc = axes[0]
    ks = report["k"]
    width = 0.8 / len(series)
    for i, (name, part) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(ks))]
        rows = part["rows"]
        medians = [r["rel_contrast_median"] or 0.0 for r in rows]
        low = [m - (r["rel_contrast_q25"] or m) for m, r in zip(medians, rows, strict=True)]
        high = [(r["rel_contrast_q75"] or m) - m for m, r in zip(medians, rows, strict=True)]
        ax_rc.bar(xs, medians, width, yerr=[low, high], capsize=3, label=f"{name} (d={part['n_features']})")
        if has_agreement:
            agreement = part["agreement"]
            fractions = [a["fraction"] for a in agreement]
            yerr = [
                [f - a["ci_low"] for f, a in zip(fractions, agreement, strict=True)],
                [a["ci_high"] - f for f, a in zip(fractions, agreement, strict=True)],
            ]
            axes[1].errorbar(xs, fractions, yerr=yerr, fmt="o", capsize=4, label=name)
    labels = [k_name(k) for k in ks]
    ax_rc.set_xticks(range(len(ks)), labels)
    ax_rc.set_ylabel("relative contrast (Dmax - Dmin) / Dmin")
    ax_rc.set_title(f"relative contrast per query: median, quartiles\n{title}", fontsize=10)
    ax_rc.legend(fontsize=8)
    if has_agreement:
        neighbors = series[0][1]["neighbors"]
        axes[1].set_xticks(range(len(ks)), labels)
        axes[1].set_ylabel(f"fraction of {neighbors} nearest neighbours in the query's class")
        axes[1].set_title("class agreement, 95% bootstrap interval", fontsize=10)
        axes[1].grid(True, axis="y", alpha=0.3)
        axes[1].legend(fontsize=8)
    save_figure(figure, path)


def plot_report(report: dict[str, Any], path: Path | str) -> None:
    if report["mode"] == "synthetic":
        plot_synthetic(report, path)
    else:
        plot_data(report, path)
