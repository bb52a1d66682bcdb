"""The report's prior-samples section: a grid of VAE prior samples per criterion for image data,
and nothing for autoencoders or tabular data."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lpae.study import parse_grid, run_study
from lpae.study.report import write_report
from lpae.study.report.data import load_study
from lpae.study.report.samples import N_SAMPLES, sample_rows, samples_section

GRID = """
name = "samples"
seeds = [0]
criteria = ["l2", "gaussian:scale=learned", "laplace:scale=learned"]
data = ["DATA"]
[[models]]
model = "MODEL"
hidden = [16]
latent = 3
[train]
epochs = 1
checkpoint_every = 0
"""


def study(tmp_path: Path, data: str, model: str) -> Path:
    out = tmp_path / f"{model}-{data}"
    run_study(parse_grid(GRID.replace("DATA", data).replace("MODEL", model), "samples.toml"), out, threads=1)
    return out


@pytest.fixture(scope="module")
def vae_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return study(tmp_path_factory.mktemp("report-samples"), "digits", "vae")


def section_images(page: str) -> list[bytes]:
    match = re.search(r'<section id="samples">(.*?)</section>', page, re.S)
    assert match, "no samples section"
    return [base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([^"]+)"', match.group(1))]


def test_vae_study_on_images_shows_one_row_of_prior_samples_per_criterion(vae_digits: Path) -> None:
    data = load_study(vae_digits)
    (_, frame), *_ = list(data.groups(data.main))
    rows = sample_rows(data, frame)
    assert rows is not None
    assert [label for label, _ in rows] == ["lp:p=2", "gaussian", "laplace"]
    for _, pictures in rows:
        assert pictures.shape == (N_SAMPLES, 8, 8) and np.isfinite(pictures).all()
        assert pictures.min() >= 0.0 and pictures.max() <= 16.0
    assert not np.array_equal(rows[0][1], rows[1][1])  # different decoders, different samples

    write_report(vae_digits)
    images = section_images((vae_digits / "report.html").read_text())
    assert len(images) == 1
    with Image.open(io.BytesIO(images[0])) as picture:
        assert picture.format == "PNG" and picture.width > 0
    assert "Prior samples" in (vae_digits / "report.md").read_text()


def test_autoencoders_and_tables_have_no_prior_samples(tmp_path: Path) -> None:
    for data, model in (("digits", "ae"), ("iris", "vae")):
        out = study(tmp_path, data, model)
        assert not samples_section(load_study(out))
        write_report(out)
        assert '<section id="samples">' not in (out / "report.html").read_text()


def test_the_full_preset_has_vae_runs_on_an_image_data_set() -> None:
    """The quick preset trains autoencoders only; the full preset's report shows prior samples
    for digits (an 8 x 8 image data set)."""
    from lpae.study.grid import load_grid

    assert not any(run.spec.model.model == "vae" for run in load_grid("quick").runs)
    vae_data = {run.spec.data for run in load_grid("full").runs if run.spec.model.model == "vae"}
    assert "digits" in vae_data
