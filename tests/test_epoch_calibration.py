"""Epoch calibration of scale=calibrated likelihoods (lpae.criteria.scale, "Epoch calibration"):
a held scale is the fixed-scale NLL, the observed scale is the batches' mean ML scale, training
holds the previous epoch's value (normalize="epoch") and resumes exactly from a checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from lpae.config import ModelSettings, TrainSettings
from lpae.criteria import build
from lpae.criteria.scale import soft_floor
from lpae.models import build_model
from lpae.train import fit

CALIBRATED = [
    "gaussian:scale=calibrated",
    "laplace:scale=calibrated",
    "gennorm:p=1.5,scale=calibrated",
    "student_t:df=3,scale=calibrated",
    "barron_nll:alpha=1,scale=calibrated",
]


@pytest.mark.parametrize("spec", CALIBRATED)
def test_a_held_scale_is_the_fixed_scale_and_the_observed_one_the_batch_mean(spec: str) -> None:
    generator = torch.Generator().manual_seed(0)
    batches = [
        (torch.randn(16, 5, generator=generator), torch.randn(16, 5, generator=generator)) for _ in range(3)
    ]
    criterion = build(spec)
    criterion.hold_scale(None)
    per_batch = [criterion(x, out) for x, out in batches]
    # the ML scale through the soft floor that every scale passes (lpae.criteria.scale)
    scales = [math.exp(float(soft_floor(criterion.calibrate(out - x).log()))) for x, out in batches]
    assert criterion.observed_scale() == pytest.approx(sum(scales) / 3, rel=1e-5)
    fixed = build(spec.replace("scale=calibrated", "scale=0.7"))
    criterion.hold_scale(0.7)
    for x, out in batches:
        torch.testing.assert_close(criterion(x, out), fixed(x, out))
    assert criterion.observed_scale() == pytest.approx(sum(scales) / 3, rel=1e-5)  # observed while held
    criterion.hold_scale(None)
    for (x, out), loss in zip(batches, per_batch, strict=True):
        torch.testing.assert_close(criterion(x, out), loss)
    with pytest.raises(ValueError, match="positive"):
        criterion.hold_scale(0.0)


def tiny_fit(settings: TrainSettings, checkpoint: Path | None = None, **kwargs: object) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(200, 6, generator=generator) * torch.linspace(0.5, 2.0, 6)
    x[::17] *= 8.0  # a few outlying rows: batches of unequal MSE
    torch.manual_seed(0)
    model = build_model((6,), ModelSettings(hidden=(8,), latent=2), build("student_t:df=3,scale=calibrated"))
    fit(model, x[:160], x[160:], settings, checkpoint=checkpoint, **kwargs)  # type: ignore[arg-type]
    return model


class Stop(Exception):
    pass


def test_training_holds_the_epoch_scale_and_resumes_exactly(tmp_path: Path) -> None:
    settings = TrainSettings(epochs=4, batch_size=32, lr=0.01, seed=0, checkpoint_every=1)
    whole = tiny_fit(settings)
    per_batch = tiny_fit(TrainSettings(epochs=4, batch_size=32, lr=0.01, seed=0, normalize="energy"))
    assert not torch.equal(whole.decoder[-1].weight, per_batch.decoder[-1].weight)  # the hold acts

    def stop_at_epoch_3(record: dict[str, float]) -> None:
        if record["epoch"] == 3:
            raise Stop

    checkpoint = tmp_path / "checkpoint.safetensors"
    with pytest.raises(Stop):
        tiny_fit(settings, checkpoint, on_epoch=stop_at_epoch_3)
    assert checkpoint.is_file()  # written after epoch 2
    resumed = tiny_fit(settings, checkpoint)
    for name, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0)
