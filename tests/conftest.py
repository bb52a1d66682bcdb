"""Shared fixtures: a trained tiny run on digits, reused by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lpae.config import ModelSettings, RunSpec, TrainSettings
from lpae.experiment import train_run

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small lp:0.5 autoencoder trained for a few epochs on digits."""
    out = tmp_path_factory.mktemp("runs") / "digits-lp0.5"
    spec = RunSpec(
        data="digits",
        loss="lp:0.5",
        model=ModelSettings(hidden=(64,), latent=8),
        train=TrainSettings(epochs=3, batch_size=128, seed=0),
    )
    train_run(spec, out)
    return out
