"""Train, save, load, evaluate on digits: the model is rebuilt from its files alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lpae.metrics import evaluate, power_mean, reconstruction_metrics
from lpae.runs import load_run, prepare_data, read_json


def test_load_rebuilds_identical_model(digits_run: Path) -> None:
    run = load_run(digits_run)
    stored = read_json(digits_run / "metrics.json")
    metrics = evaluate(run)
    assert metrics["recon_l1"] == pytest.approx(stored["recon_l1"], rel=1e-6)
    assert metrics["recon_l2"] == pytest.approx(stored["recon_l2"], rel=1e-6)


def test_preprocessing_fitted_on_training_split_only(digits_run: Path) -> None:
    run = load_run(digits_run)
    prepared = prepare_data(run.config)
    train = prepared.tensor("train").numpy()
    assert np.abs(train.mean(axis=0)).max() < 1e-4
    assert not set(prepared.train) & set(prepared.test)
    assert not set(prepared.train) & set(prepared.val)
    assert len(prepared.train) + len(prepared.val) + len(prepared.test) == 1797


def test_training_lowers_validation_loss(digits_run: Path) -> None:
    lines = (digits_run / "history.csv").read_text().splitlines()[1:]
    val_losses = [float(line.split(",")[2]) for line in lines]
    assert val_losses[-1] < val_losses[0]


def test_reconstruction_metrics_known_answers() -> None:
    x = np.zeros((4, 5))
    perfect = reconstruction_metrics(x, x)
    assert perfect["recon_l1"] == 0.0 and perfect["recon_l2"] == 0.0
    offset = reconstruction_metrics(x, x + 0.5)
    assert offset["recon_l1"] == pytest.approx(0.5) and offset["recon_l2"] == pytest.approx(0.5)
    residual = np.array([3.0, -4.0])
    assert power_mean(residual, 2) == pytest.approx(np.sqrt(12.5))
    assert power_mean(residual, 1) == pytest.approx(3.5)


def test_weights_are_safetensors_not_pickle(digits_run: Path) -> None:
    raw = (digits_run / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert raw[8 : 8 + header_len].startswith(b"{")
    assert all(torch.isfinite(p).all() for p in load_run(digits_run).model.parameters())
