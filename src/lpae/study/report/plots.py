"""Plots for the report, drawn with matplotlib's object API (no pyplot state) as base64 PNG data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from lpae.study.report.stats import Summary


def data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def heatmap(
    values: np.ndarray, rows: Sequence[str], columns: Sequence[str], higher: Sequence[bool], title: str
) -> str:
    """Criterion x metric means, coloured by how far each is from its column's best (1 = best)."""
    # (R, C) ratio to the best of each column, >= 1; capped at 2 so one bad run does not wash out colour
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.where(higher, np.nanmax(values, axis=0), np.nanmin(values, axis=0))
        ratio = np.where(higher, best / values, values / best)
    ratio = np.clip(np.where(np.isfinite(ratio), ratio, np.nan), 1.0, 2.0)
    figure = Figure(figsize=(1.2 * len(columns) + 2.5, 0.42 * len(rows) + 1.6))
    axes = figure.subplots()
    image = axes.imshow(ratio, cmap="viridis_r", vmin=1.0, vmax=2.0, aspect="auto")
    axes.set_xticks(range(len(columns)), labels=columns, rotation=30, ha="right")
    axes.set_yticks(range(len(rows)), labels=rows)
    for i in range(len(rows)):
        for j in range(len(columns)):
            if np.isfinite(values[i, j]):
                colour = "white" if ratio[i, j] > 1.5 else "black"
                axes.text(j, i, f"{values[i, j]:.3g}", ha="center", va="center", fontsize=8, color=colour)
    figure.colorbar(image, ax=axes, label="ratio to the column's best")
    axes.set_title(title)
    return data_uri(figure)


def curves(
    panels: Sequence[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]],
    title: str,
    xlabel: str = "epoch",
    log_y: bool = False,
    xticks: Sequence[str] | None = None,
) -> str:
    """Several panels of one line per criterion: panels = [(ylabel, {criterion: (x, y)})]."""
    figure = Figure(figsize=(5.2 * len(panels), 3.6))
    axes_list = figure.subplots(1, len(panels), squeeze=False)
    for axes, (ylabel, lines) in zip(axes_list[0], panels, strict=True):
        for name, (x, y) in lines.items():
            axes.plot(x, y, label=name, linewidth=1.4)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        if log_y:
            axes.set_yscale("log")
        if xticks is not None:
            axes.set_xticks(range(len(xticks)), labels=xticks)
        axes.grid(alpha=0.3)
    axes_list[0][-1].legend(fontsize=7, loc="best")
    figure.suptitle(title)
    return data_uri(figure)


def intervals(
    summaries: dict[str, Summary],
    xlabel: str,
    title: str,
    reference: float | None = None,
    reference_label: str = "",
) -> str:
    """One dot per criterion with its 95% interval; an optional vertical reference line."""
    names = list(summaries)
    figure = Figure(figsize=(6.5, 0.35 * len(names) + 1.4))
    axes = figure.subplots()
    for i, name in enumerate(names):
        s = summaries[name]
        axes.errorbar(s.mean, i, xerr=[[s.mean - s.low], [s.high - s.mean]], fmt="o", capsize=3, color="C0")
    if reference is not None:
        axes.axvline(reference, color="C3", linestyle="--", label=reference_label)
        axes.legend(fontsize=8)
    axes.set_yticks(range(len(names)), labels=names)
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    axes.grid(alpha=0.3, axis="x")
    return data_uri(figure)


def image_grid(rows: Sequence[tuple[str, np.ndarray]], title: str) -> str:
    """Rows of images (N, H, W) or (N, H, W, 3), one labelled row each, shared grey scale per row set."""
    n_cols = max(len(images) for _, images in rows)
    figure = Figure(figsize=(1.1 * n_cols + 1.6, 1.15 * len(rows)))
    axes = figure.subplots(len(rows), n_cols, squeeze=False)
    low = min(float(np.nanmin(images)) for _, images in rows)
    high = max(float(np.nanmax(images)) for _, images in rows)
    for r, (label, images) in enumerate(rows):
        for c in range(n_cols):
            axes[r][c].axis("off")
            if c < len(images):
                # Scaled to [0, 1] with one range for every row: grey and RGB images alike.
                scaled = (np.clip(images[c], low, high) - low) / max(high - low, 1e-12)
                axes[r][c].imshow(scaled, cmap="gray", vmin=0.0, vmax=1.0)
        axes[r][0].text(
            -0.15, 0.5, label, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=8
        )
    figure.suptitle(title)
    return data_uri(figure)
