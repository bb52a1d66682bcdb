"""`lpae train --loss SPEC --data digits` works for every registered criterion and scale mode.

Table-driven, 1 epoch of a tiny model through lpae.experiment.train_run (what the CLI calls):
the run finishes, its metrics are finite, unit-interval families get min-max data, and the
learned shape and scale parameters land in metrics.json.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest

from lpae import criteria
from lpae.config import ModelSettings, RunSpec, TrainSettings
from lpae.experiment import train_run

TRAIN_SPECS = {
    "lp:0.5": set(),
    "lpnorm:2": set(),
    "huber": set(),
    "l1l2": set(),
    "charbonnier": set(),
    "logcosh": set(),
    "cauchy": set(),
    "barron:alpha=learned": {"learned_alpha"},
    "gaussian": {"learned_scale"},
    "gaussian:scale=calibrated": set(),
    "laplace:scale=predicted": set(),
    "gennorm": {"learned_p", "learned_scale"},
    "gennorm:p=1.5,scale=learned_per_feature": {"learned_scale"},
    "student_t:scale=calibrated": {"learned_df"},
    "student_t:df=3,scale=predicted": set(),
    "barron_nll": {"learned_alpha", "learned_scale"},
    "barron_nll:alpha=1,scale=calibrated": set(),
    "cbernoulli": set(),
    "beta": set(),
    "beta:concentration=predicted": set(),
    "bernoulli": set(),
}
LEARNED_KEYS = {"learned_p", "learned_df", "learned_alpha", "learned_scale"}


def test_table_covers_every_registered_criterion() -> None:
    assert {criteria.CRITERIA.resolve(spec)[0].name for spec in TRAIN_SPECS} == set(criteria.available())


@pytest.fixture
def light_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the evaluation parts that never touch the criterion (latent probes, a scipy shape fit):
    they cost seconds per run and have tests of their own. Reconstruction and the criterion's own
    NLL are still evaluated."""
    module = importlib.import_module(
        "lpae.metrics.evaluate"
    )  # the package re-exports a function of that name
    monkeypatch.setattr(module, "latent_scores", lambda *args: {})
    monkeypatch.setattr(module, "residual_shape", lambda *args: {})


@pytest.mark.parametrize("spec", list(TRAIN_SPECS))
def test_one_epoch_on_digits(spec: str, tmp_path: Path, light_evaluation: None) -> None:
    run = RunSpec(
        data="digits",
        loss=spec,
        model=ModelSettings(hidden=(16,), latent=4),
        train=TrainSettings(epochs=1, batch_size=256, seed=0),
    )
    metrics = train_run(run, tmp_path / "run")
    assert metrics["status"] == "done", metrics
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["loss"] == criteria.normalize(spec)
    unit = criteria.build(spec, feature_shape=(64,)).support == "unit"
    assert config["data"]["preprocess"]["method"] == ("minmax" if unit else "standard")
    assert math.isfinite(stored["recon_l2"])
    assert set(stored) & LEARNED_KEYS == TRAIN_SPECS[spec]
    assert all(math.isfinite(stored[key]) and stored[key] > 0 for key in TRAIN_SPECS[spec])
