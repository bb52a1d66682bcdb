"""Reconstructions of test images, one row per criterion, for image data sets.

A data set counts as images when one sample has shape (C, H, W) or when the data set says so
(``info["image_shape"]``, e.g. digits as 1 x 8 x 8). Images are shown in original units (the
stored preprocessing inverted), from the lowest seed's run of each criterion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lpae.generate import as_pictures, image_shape
from lpae.runs import Run, load_run, prepare_data
from lpae.study.report import plots
from lpae.study.report.data import StudyData
from lpae.study.report.page import Section, image, para

N_IMAGES = 8
MAX_ROWS = 12
Rows = list[tuple[str, np.ndarray]]  # (row label, its pictures from lpae.generate.as_pictures)


def first_runs(study: StudyData, frame: pd.DataFrame) -> Iterator[tuple[str, Run]]:
    """(criterion, its run of the lowest seed) for at most MAX_ROWS criteria, in grid order; runs
    whose folder cannot be read are left out."""
    first = frame.sort_values("seed", kind="stable").groupby("criterion", sort=False).head(1)
    for _, run_row in first.head(MAX_ROWS).iterrows():
        try:
            yield str(run_row["criterion"]), load_run(Path(study.out) / str(run_row["run_dir"]))
        except (OSError, ValueError):
            continue


def reconstruction_rows(study: StudyData, frame: pd.DataFrame) -> Rows | None:
    rows: Rows = []
    for criterion, run in first_runs(study, frame):
        prepared = prepare_data(run.config)
        shape = image_shape(run.config.data.shape, prepared.dataset.info)
        if shape is None:
            return None
        x = prepared.tensor("test")[:N_IMAGES]
        with torch.no_grad():
            x_hat = run.model.reconstruct(x).numpy()  # (N_IMAGES, *shape), a few rows: one batch
        if not rows:
            rows.append(("original", as_pictures(prepared.preprocessor.inverse(x.numpy()), shape)))
        rows.append((criterion, as_pictures(prepared.preprocessor.inverse(x_hat), shape)))
    return rows if len(rows) > 1 else None


def grid_section(
    study: StudyData,
    name: str,
    title: str,
    rows_of: Callable[[StudyData, pd.DataFrame], Rows | None],
    alt: str,
    intro: str,
) -> Section:
    """One image grid per data set and model configuration (``rows_of`` its rows, None to skip
    it), with ``alt`` + the group's title as alternative text, after an ``intro`` paragraph; an
    empty section when no group has rows."""
    section = Section(name, title)
    for group, frame in study.groups(study.main):
        rows = rows_of(study, frame)
        if rows:
            section.add(image(plots.image_grid(rows, group), f"{alt} for {group}"))
    if section:
        section.parts.insert(0, para(intro))
    return section


def reconstructions_section(study: StudyData) -> Section:
    return grid_section(
        study,
        "reconstructions",
        "Reconstructions",
        reconstruction_rows,
        "test reconstructions",
        "The first test images and each criterion's reconstruction (lowest seed), in original units.",
    )
