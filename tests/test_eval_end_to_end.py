"""Robust estimation, end to end: on data with heavy-tailed Student-t noise (df = 1.5, infinite
variance), an autoencoder trained with L1 recovers the clean signal better than one trained
with L2, in both clean_l1 and clean_l2 (the median is a robust location, the mean is not)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lpae.config import ModelSettings, RunSpec, TrainSettings
from lpae.experiment import train_run

DATA = "synthetic:n=1000,dim=16,latent=2,noise=student_t,df=1.5,scale=0.5,seed=0"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: these steps are tiny, and a second torch thread waiting for a busy core
    made this test 3x slower on the shared build machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_l1_recovers_the_clean_signal_better_than_l2_under_student_t_noise(
    tmp_path: Path, one_thread: None
) -> None:
    metrics = {}
    for loss in ("lp:1", "lp:2"):
        spec = RunSpec(
            data=DATA,
            loss=loss,
            model=ModelSettings(hidden=(64,), latent=4),
            train=TrainSettings(epochs=15, batch_size=64, seed=0, checkpoint_every=0),
        )
        metrics[loss] = train_run(spec, tmp_path / loss)
    l1, l2 = metrics["lp:1"], metrics["lp:2"]
    # Seeds 0-8 all show it, by 25-40 % in clean_l1 and 10-45 % in clean_l2 (measured when written).
    assert l1["clean_l1"] < l2["clean_l1"]
    assert l1["clean_l2"] < l2["clean_l2"]
    # The noise is heavy-tailed and the residual fits say so.
    assert l1["residual_t_df"] < 5 and l1["residual_gennorm_p"] < 1.5
