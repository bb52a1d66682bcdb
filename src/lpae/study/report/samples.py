"""Prior samples of each criterion's VAE side by side, for image data sets.

For each data set and model configuration whose runs are VAEs on image data, one row per
criterion (its lowest seed's run, as for the reconstructions): the decoder means of N_SAMPLES
codes z ~ N(0, I), the same codes for every criterion (lpae.generate.prior_samples with seed
SAMPLE_SEED and one latent size), in original units on one grey scale, so that a reader sees
what each loss does to generated images (a blurred L2 mean, sharper robust ones).
"""

from __future__ import annotations

import pandas as pd

from lpae.generate import as_pictures, prior_samples
from lpae.models import VariationalAutoencoder
from lpae.study.report.data import StudyData
from lpae.study.report.images import N_IMAGES, Rows, first_runs, grid_section
from lpae.study.report.page import Section

N_SAMPLES = N_IMAGES
SAMPLE_SEED = 0


def sample_rows(study: StudyData, frame: pd.DataFrame) -> Rows | None:
    rows: Rows = []
    for criterion, run in first_runs(study, frame):
        if not isinstance(run.model, VariationalAutoencoder):
            return None
        generated = prior_samples(run, N_SAMPLES, seed=SAMPLE_SEED)
        if generated.image_shape is None:
            return None
        rows.append((criterion, as_pictures(generated.x, generated.image_shape)))
    return rows or None


def samples_section(study: StudyData) -> Section:
    return grid_section(
        study,
        "samples",
        "Prior samples",
        sample_rows,
        "VAE prior samples",
        f"Decoder means of {N_SAMPLES} draws z ~ N(0, I) from each criterion's VAE (lowest seed; "
        f"the same draws for every criterion), in original units; lpae sample draws more "
        f"(docs/sample.md).",
    )
