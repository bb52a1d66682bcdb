"""`lpae train` end to end: models and options through the CLI, config.json completeness and
rebuilding, determinism, divergence exit code 3, one-line errors, --quiet, --resume without a
checkpoint, VAE bounds in metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from lpae.cli import app
from lpae.metrics import evaluate
from lpae.models import DenoisingAutoencoder, VariationalAutoencoder
from lpae.runs import load_run, partial_dir

runner = CliRunner()
SMALL = ["--data", "digits", "--hidden", "32", "--latent", "4", "--epochs", "2", "--quiet"]


def train(out: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["train", *SMALL, "--out", str(out), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "model_class", "arch"),
    [
        (["--model", "dae", "--corruption", "saltpepper:rate=0.2"], DenoisingAutoencoder, "mlp"),
        (["--model", "vae", "--beta", "0.5", "--kl-warmup", "2"], VariationalAutoencoder, "mlp"),
        (["--model", "ae", "--arch", "conv", "--hidden", "4,8"], None, "conv"),
    ],
)
def test_models_train_and_rebuild_from_config(
    tmp_path: Path, args: list[str], model_class: type | None, arch: str
) -> None:
    out = tmp_path / "run"
    code, stdout, stderr = train(out, *args, "--optimizer", "adamw", "--schedule", "cosine", "--clip", "1")
    assert code == 0, stderr
    assert stdout == ""  # --quiet: no bar, no table
    assert not partial_dir(out).exists()
    config = json.loads((out / "config.json").read_text())
    model = config["model"]
    assert model["arch"] == arch and isinstance(model["hidden"], list) and model["latent"] == 4
    assert config["train"]["optimizer"] == "adamw" and config["train"]["schedule"] == "cosine"
    assert config["train"]["clip"] == 1.0 and config["train"]["device"] == "auto"
    if arch == "conv":
        assert model["image_shape"] == [1, 8, 8]  # digits read as 1x8x8 images
    run = load_run(out)
    if model_class is not None:
        assert isinstance(run.model, model_class)
    stored = json.loads((out / "metrics.json").read_text())
    assert evaluate(run)["recon_l2"] == pytest.approx(stored["recon_l2"], rel=1e-6)
    header = (out / "history.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,val_loss,val_recon_l1,val_recon_l2,lr"


def test_same_seed_same_metrics_and_weights(tmp_path: Path) -> None:
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        assert train(out, "--model", "dae", "--seed", "7")[0] == 0
    metrics = [json.loads((out / "metrics.json").read_text()) for out in runs]
    for m in metrics:
        m.pop("train_seconds")
    assert metrics[0] == metrics[1]
    first, second = (load_file(out / "model.safetensors") for out in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_divergence_exits_3_with_a_reason_and_finite_weights(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, stderr = train(out, "--hidden", "256,128", "--lr", "1000")
    assert code == 3
    assert stderr.strip().splitlines() == [stderr.strip()] and "training diverged" in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and "non-finite" in metrics["reason"]
    assert all(torch.isfinite(t).all() for t in load_file(out / "model.safetensors").values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "ae", "--corruption", "mask:rate=0.1"], "corruption applies to model dae only"),
        (["--model", "dae", "--corruption", "mask:rate=2"], "mask:rate=2"),
        (["--model", "ae", "--beta", "2"], "apply to model vae only"),
        (["--model", "gan"], "unknown model 'gan'"),
        (["--arch", "conv", "--data", "breast_cancer"], "arch conv needs image data"),
        (["--optimizer", "sgd"], "unknown optimizer 'sgd'"),
        (["--schedule", "step"], "unknown schedule"),
        (["--clip", "-1"], "gradient clipping norm must be a positive number"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--hidden", "64,x"], "--hidden must be comma-separated integers"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, stderr = train(tmp_path / "run", *args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lpae: error:") and message in lines[0], stderr
    assert list(tmp_path.iterdir()) == []


def test_cuda_without_a_gpu_is_a_clear_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, stderr = train(tmp_path / "run", "--device", "cuda")
    assert code == 2 and "no CUDA device is available" in stderr
    assert not (tmp_path / "run").exists() and not partial_dir(tmp_path / "run").exists()


def test_resume_without_a_checkpoint_starts_fresh(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train(out, "--resume")[0] == 0
    code, _, stderr = train(out, "--resume")
    assert code == 2 and "already exists" in stderr


def test_vae_metrics_hold_elbo_and_iwae_only_for_likelihoods(tmp_path: Path) -> None:
    code, _, stderr = train(tmp_path / "plain", "--model", "vae", "--loss", "lp:2")
    assert code == 0, stderr
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert "elbo" not in plain and "iwae" not in plain
    code, _, stderr = train(tmp_path / "nll", "--model", "vae", "--loss", "gaussian:scale=1", "--epochs", "3")
    assert code == 0, stderr
    metrics = json.loads((tmp_path / "nll" / "metrics.json").read_text())
    assert metrics["iwae"] >= metrics["elbo"]
    assert metrics["iwae"] < 0  # a density of 64 standardised features is far below 1


def test_progress_bar_shows_epoch_loss_and_rate(capsys: pytest.CaptureFixture[str]) -> None:
    from lpae.cli.train import progress_bar

    with progress_bar(False, 2) as callback:
        assert callback is None
    with progress_bar(True, 2) as callback:
        assert callback is not None
        for epoch in (1, 2):
            callback({"epoch": epoch, "train_loss": 1.5 / epoch, "val_loss": 2.0, "samples_per_s": 12345.0})
    shown = capsys.readouterr().out  # captured: not a terminal, so plain lines
    assert "epoch 2/2  train 0.75  val 2  12,345 samples/s" in shown
