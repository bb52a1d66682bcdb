"""evaluate() and `lpae eval` on trained runs: every key present, documented, reproducible."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lpae.cli import app
from lpae.config import ModelSettings, RunSpec, TrainSettings
from lpae.data import load
from lpae.experiment import train_run
from lpae.metrics import METRICS, evaluate, reconstruct
from lpae.metrics.evaluate import subset_note
from lpae.runs import load_run, prepare_data

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
RECON = ("recon_l0.5", "recon_l1", "recon_l2", "recon_linf")
LATENT = ("knn_acc_l0.5", "knn_acc_l1", "knn_acc_l2", "probe_acc")


def documented_keys() -> set[str]:
    return set(re.findall(r"`([a-z][a-z0-9_.]*)`", DOCS.read_text()))


@pytest.fixture(scope="module")
def synthetic_vae(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Gaussian-likelihood VAE on synthetic data (clean signal, labels, a likelihood)."""
    out = tmp_path_factory.mktemp("eval") / "vae"
    spec = RunSpec(
        data="synthetic:n=300,dim=8,noise=laplace,scale=0.3",
        loss="gaussian:scale=learned",
        model=ModelSettings(model="vae", hidden=(16,), latent=2),
        train=TrainSettings(epochs=2, checkpoint_every=0),
    )
    train_run(spec, out)
    return out


@pytest.fixture(scope="module")
def digits_metrics(digits_run: Path) -> dict[str, object]:
    return evaluate(digits_run)


@pytest.fixture(scope="module")
def emitted(
    digits_run: Path, synthetic_vae: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[set[str]]:
    """The keys of metrics.json and evaluate() on runs that between them emit every key: an ae on
    images with labels, a VAE with a likelihood on data with a clean signal, a one-class run, a
    diverged run, another data set scored, and a model whose outputs are NaN."""
    out = tmp_path_factory.mktemp("emitted")
    tiny = ModelSettings(hidden=(8,), latent=2)
    short, wild = TrainSettings(epochs=1, checkpoint_every=0), TrainSettings(epochs=1, lr=1e12)
    train_run(RunSpec(data="iris", loss="lp:1", normal_classes=(0,), model=tiny, train=short), out / "one")
    diverged = train_run(RunSpec(data="iris", loss="lp:2", model=tiny, train=wild), out / "diverged")
    assert diverged["status"] == "diverged"
    broken = load_run(out / "one")
    with torch.no_grad():
        for parameter in broken.model.parameters():
            parameter.fill_(float("nan"))
    runs = (digits_run, synthetic_vae, out / "one", out / "diverged")
    found = [set(json.loads((run / "metrics.json").read_text())) for run in runs]
    return [*found, set(evaluate(out / "one", data="iris")), set(evaluate(broken))]


def test_digits_run_has_every_key_group(digits_metrics: dict[str, Any]) -> None:
    metrics = dict(digits_metrics)
    expected = {
        *RECON,
        *(f"{key}_orig" for key in RECON),
        *("psnr", "ssim", "nll_gennorm_bpd", "nll_gennorm_p", "residual_gennorm_p", "residual_t_df"),
        *LATENT,
        *(f"raw_{key}" for key in LATENT),
    }
    assert expected <= set(metrics)
    assert "nll_own_bpd" not in metrics  # lp:0.5 is a plain loss
    assert not any(key.startswith(("clean_", "anomaly_", "elbo", "iwae")) for key in metrics)
    assert all(np.isfinite(value) for key, value in metrics.items() if key != "status")
    for key in (*LATENT, "ssim"):
        assert 0.0 <= metrics[key] <= 1.0
    # power means grow with q; the raw digits are classifiable far above chance (10 classes)
    assert metrics["recon_l0.5"] <= metrics["recon_l1"] <= metrics["recon_l2"] <= metrics["recon_linf"]
    assert metrics["raw_knn_acc_l2"] > 0.8 and metrics["raw_probe_acc"] > 0.8


def test_every_emitted_key_is_documented(emitted: list[set[str]]) -> None:
    documented = documented_keys()
    for keys in emitted:
        assert keys - documented == set()


def test_every_emitted_key_is_declared(emitted: list[set[str]]) -> None:
    """A key missing from lpae.metrics.METRICS would be silently left out of the report."""
    every = set().union(*emitted)
    assert every - set(METRICS) == set()
    assert {"psnr", "clean_l2_orig", "elbo", "anomaly_auprc_nll", "learned_scale", "reason"} <= every
    assert {"eval_data", "nonfinite_outputs", "raw_probe_acc", "train_seconds"} <= every


def test_evaluation_of_the_saved_run_reproduces_training_time_metrics(
    digits_run: Path, digits_metrics: dict[str, Any]
) -> None:
    """metrics.json was written by evaluate() on the in-memory model at the end of training."""
    stored = json.loads((digits_run / "metrics.json").read_text())
    assert stored["status"] == digits_metrics["status"] == "done"
    for key, value in digits_metrics.items():
        if key != "status":
            assert stored[key] == pytest.approx(value, rel=1e-6), key


def test_original_units_invert_the_preprocessing(digits_run: Path) -> None:
    run = load_run(digits_run)
    prepared = prepare_data(run.config)
    x_hat = prepared.preprocessor.inverse(reconstruct(run, prepared.tensor("test")))
    expected = float(np.mean(np.abs(x_hat.astype(np.float64) - prepared.dataset.x[prepared.test])))
    stored = json.loads((digits_run / "metrics.json").read_text())  # evaluate() at the end of training
    assert stored["recon_l1_orig"] == pytest.approx(expected, rel=1e-6)


def test_vae_on_synthetic_data(synthetic_vae: Path) -> None:
    metrics = evaluate(synthetic_vae)
    for key in ("clean_l1", "clean_l2", "clean_l1_orig", "clean_l2_orig", "nll_own_bpd", "elbo", "iwae"):
        assert np.isfinite(metrics[key]), key
    assert metrics["iwae"] >= metrics["elbo"] - 0.5  # IWAE_64 bounds the ELBO from above (MC noise)
    assert "psnr" not in metrics  # tabular data
    # nll_own_bpd is the Gaussian NLL of the test split at the posterior mean
    run = load_run(synthetic_vae)
    x = prepare_data(run.config).tensor("test")
    with torch.no_grad():
        nats = float(run.model.criterion(x, run.model(x)).double().mean())
    assert metrics["nll_own_bpd"] == pytest.approx(nats / (8 * np.log(2)), rel=1e-6)


def test_data_override_scores_another_data_set(digits_run: Path) -> None:
    own = json.loads((digits_run / "metrics.json").read_text())
    dataset = load("digits")
    dataset.x = dataset.x + 3.0  # shifted digits: the same model reconstructs them worse
    shifted = evaluate(digits_run, data=dataset)
    assert shifted["eval_data"] == "digits"
    assert shifted["recon_l1"] > own["recon_l1"]
    assert shifted["raw_knn_acc_l1"] == own["raw_knn_acc_l1"]  # a shift moves no distance


def test_data_override_of_the_wrong_shape_is_refused(digits_run: Path) -> None:
    with pytest.raises(ValueError, match=r"samples of shape \(4,\) do not fit the run .* \(64,\)"):
        evaluate(digits_run, data="iris")
    with pytest.raises(TypeError, match="data spec string or an lpae.data.Dataset"):
        evaluate(digits_run, data=3)  # type: ignore[arg-type]


def test_cli_eval_writes_metrics_and_json(digits_run: Path, tmp_path: Path) -> None:
    report = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", str(digits_run), "--json", str(report), "--quiet"])
    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())
    stored = json.loads((digits_run / "metrics.json").read_text())
    assert set(written) <= set(stored) and "epochs_run" in stored  # merged, training keys kept
    assert written["knn_acc_l1"] == stored["knn_acc_l1"]
    assert "eval_data" not in written


def test_cli_eval_with_other_data_leaves_metrics_json_alone(digits_run: Path, tmp_path: Path) -> None:
    before = (digits_run / "metrics.json").read_text()
    report = tmp_path / "other.json"
    result = runner.invoke(app, ["eval", str(digits_run), "--data", "digits", "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["eval_data"] == "digits"
    assert (digits_run / "metrics.json").read_text() == before


def test_every_knn_row_below_the_caps_gives_the_default_values(
    digits_run: Path, digits_metrics: dict[str, Any]
) -> None:
    """digits has fewer rows than the kNN caps: asking for every row changes nothing, and no note."""
    every = evaluate(digits_run, knn_rows=(None, None))
    for key in (*LATENT, "raw_knn_acc_l1", "raw_probe_acc"):
        assert every[key] == digits_metrics[key], key
    assert subset_note(prepare_data(load_run(digits_run).config)) is None


def test_cli_eval_knn_subset_says_what_it_used(digits_run: Path, tmp_path: Path) -> None:
    prepared = prepare_data(load_run(digits_run).config)
    n_test, n_train = len(prepared.test), len(prepared.train)
    report = tmp_path / "subset.json"
    args = ["eval", str(digits_run), "--data", "digits", "--knn-rows", "50,200", "--json", str(report)]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    assert (
        f"kNN accuracies of a seeded 50 of {n_test} test rows against 200 of {n_train:,} training rows"
        in result.output
    )
    assert "--knn-rows all uses every row" in result.output
    subset = json.loads(report.read_text())
    full = evaluate(digits_run, data="digits")
    assert subset["recon_l2"] == full["recon_l2"]  # only the kNN and probe rows differ
    assert any(subset[key] != full[key] for key in LATENT)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "iris"], "samples of shape (4,) do not fit"),
        (["--data", "nosuch"], "unknown data set 'nosuch'"),
        (["--json", "/nonexistent-folder/x.json"], "folder /nonexistent-folder does not exist"),
        (["--knn-rows", "0,5000"], "a number of rows must be at least 1"),
        (["--knn-rows", "ten"], "--knn-rows must be QUERIES,REFERENCES"),
        (["--knn-rows", "1,2,3"], "--knn-rows must be QUERIES,REFERENCES"),
    ],
)
def test_cli_eval_bad_input_is_one_line(digits_run: Path, args: list[str], message: str) -> None:
    before = (digits_run / "metrics.json").read_text()
    result = runner.invoke(app, ["eval", str(digits_run), *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lpae: error:") and message in lines[0]
    assert (digits_run / "metrics.json").read_text() == before


def test_a_model_with_nonfinite_outputs_is_reported_not_fatal(digits_run: Path) -> None:
    run = load_run(digits_run)
    with torch.no_grad():
        last = [m for m in run.model.decoder.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.bias[3] = float("nan")
    metrics = evaluate(run)
    assert metrics["nonfinite_outputs"] == len(prepare_data(run.config).test)  # one feature per row
    assert np.isnan(metrics["recon_l1"])
    assert not any(key.startswith(("nll_", "knn_", "residual_")) for key in metrics)
