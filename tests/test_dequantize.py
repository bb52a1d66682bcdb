"""Uniform dequantization (lpae.dequantize): resolution, the noise, the bound, and the trainers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lpae.config import ModelSettings, RunSpec, TrainSettings
from lpae.criteria import build
from lpae.data import load
from lpae.dequantize import dequantizer, resolve
from lpae.experiment import train_run
from lpae.fused.group import train_group
from lpae.fused.train import fit_group
from lpae.metrics.discrete import own_sample_nll
from lpae.models import build_model
from lpae.runs import load_run, prepare_data

DIGITS = load("digits").quantization


def test_auto_is_on_for_likelihoods_on_the_real_line_on_quantized_data() -> None:
    assert resolve("auto", build("gaussian"), DIGITS, "digits") == "on"
    assert resolve("auto", build("student_t"), DIGITS, "digits") == "on"
    assert resolve("auto", build("lp:2"), DIGITS, "digits") == "off"  # a plain loss: no scale to collapse
    assert resolve("auto", build("cbernoulli"), DIGITS, "digits") == "off"  # lives on (0, 1)
    assert resolve("auto", build("gaussian"), None, "iris") == "off"
    assert resolve("off", build("gaussian"), DIGITS, "digits") == "off"


def test_on_where_it_cannot_apply_is_an_error() -> None:
    with pytest.raises(
        ValueError, match="dequantize on: data 'iris' has no quantized feature; use auto or off"
    ):
        resolve("on", build("gaussian"), None, "iris")
    with pytest.raises(ValueError, match=r"dequantize on: cbernoulli lives on \(0, 1\)"):
        resolve("on", build("cbernoulli"), DIGITS, "digits")
    with pytest.raises(ValueError, match="unknown dequantize 'maybe'"):
        TrainSettings(dequantize="maybe")


def test_the_noise_is_uniform_within_each_bin_and_seeded() -> None:
    width = torch.tensor([0.5, 0.0, 2.0])
    xb = torch.zeros(20000, 3)
    first = dequantizer(width, torch.Generator().manual_seed(3))(xb)
    again = dequantizer(width, torch.Generator().manual_seed(3))(xb)
    assert torch.equal(first, again)
    assert (first[:, 1] == 0).all()  # a continuous feature gets none
    for j, w in ((0, 0.5), (2, 2.0)):
        values = first[:, j].numpy()
        assert values.min() >= -w / 2 and values.max() <= w / 2
        # uniform: the quartiles of U(-w/2, w/2) within sampling error (se about 0.004 w)
        np.testing.assert_allclose(
            np.quantile(values, [0.25, 0.5, 0.75]), [-w / 4, 0.0, w / 4], atol=0.02 * w
        )


def tiny(loss: str, **train: object) -> RunSpec:
    settings = TrainSettings(epochs=2, checkpoint_every=0, **train)  # type: ignore[arg-type]
    return RunSpec(data="digits", loss=loss, model=ModelSettings(hidden=(16,), latent=4), train=settings)


def test_runs_record_the_resolved_setting_and_repeat_exactly(tmp_path: Path) -> None:
    first = train_run(tiny("gaussian", dequantize="auto"), tmp_path / "a")
    again = train_run(tiny("gaussian", dequantize="auto"), tmp_path / "b")
    plain = train_run(tiny("gaussian"), tmp_path / "c")  # the default: off
    assert json.loads((tmp_path / "a" / "config.json").read_text())["train"]["dequantize"] == "on"
    assert json.loads((tmp_path / "c" / "config.json").read_text())["train"]["dequantize"] == "off"
    assert first["nll_own_bpd"] == again["nll_own_bpd"]  # seeded noise: the same run twice
    assert first["nll_own_bpd"] != plain["nll_own_bpd"]  # and the noise did act


def test_dequantized_nll_bounds_the_discrete_nll_on_the_same_model(tmp_path: Path) -> None:
    """Theis et al. 2016: -log P(bin) <= E_u[-log p(x + u)] + log(1 / delta) per element (Jensen),
    on a trained model's test split, in the model's space (bin widths delta_j there)."""
    train_run(tiny("gaussian", dequantize="on"), tmp_path / "run")
    run = load_run(tmp_path / "run")
    prepared = prepare_data(run.config)
    x = prepared.tensor("test").to(torch.float64)
    criterion = run.model.criterion.double()
    model = run.model.double()
    with torch.no_grad():
        out = model(x)
    quantization = prepared.preprocessor.quantization
    assert quantization is not None
    lower, upper = quantization.bin_offsets(x.numpy())
    discrete = own_sample_nll(criterion, x, out, lower, upper)
    assert discrete is not None
    width = torch.from_numpy(quantization.step)
    noise = dequantizer(width, torch.Generator().manual_seed(0))
    with torch.no_grad():
        dequantized = torch.stack([criterion(noise(x), out) for _ in range(256)]).mean(0).numpy()  # (N,)
    log_inverse_width = float(np.log(1 / quantization.step).sum())  # per sample
    assert (dequantized + log_inverse_width >= discrete).all()


def test_fused_training_leaves_dequantized_runs_to_the_solo_trainer(tmp_path: Path) -> None:
    specs = [tiny("lp:2"), tiny("gaussian", dequantize="on"), tiny("l1")]
    outs = [tmp_path / name for name in ("a", "b", "c")]
    metrics = train_group(specs, outs)
    saved = [json.loads((out / "config.json").read_text()) for out in outs]
    assert "fused" not in saved[1] and saved[1]["train"]["dequantize"] == "on"  # trained alone
    assert saved[0]["fused"] and saved[2]["fused"] and saved[0]["group"] == saved[2]["group"]
    alone = train_run(specs[1], tmp_path / "again")  # as train_run would, in order
    assert {k: v for k, v in metrics[1].items() if k != "train_seconds"} == {
        k: v for k, v in alone.items() if k != "train_seconds"
    }
    model = build_model((64,), ModelSettings(hidden=(8,), latent=2).resolve((64,)), build("gaussian"))
    x = torch.zeros(10, 64)
    with pytest.raises(ValueError, match=r"member\(s\) \[0\] train on dequantized data"):
        fit_group([model], [x], [x], [TrainSettings(epochs=1, dequantize="on")])


class Interrupt(Exception):
    pass


def test_an_interrupted_dequantized_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """The noise generator is checkpointed with the others (lpae.checkpoint)."""
    from lpae.train import fit

    x = torch.from_numpy(load("digits").x[:300] / 16.0)
    width = torch.full((64,), 1 / 16.0)
    settings = TrainSettings(epochs=4, batch_size=64, checkpoint_every=1)

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model((64,), ModelSettings(hidden=(8,), latent=2).resolve((64,)), build("gaussian"))

    straight = model()
    fit(straight, x[:200], x[200:], settings, bin_width=width)

    def stop_after_two(record: dict) -> None:
        if record["epoch"] == 2:
            raise Interrupt

    checkpoint = tmp_path / "checkpoint.safetensors"
    with pytest.raises(Interrupt):
        fit(
            model(),
            x[:200],
            x[200:],
            settings,
            checkpoint=checkpoint,
            on_epoch=stop_after_two,
            bin_width=width,
        )
    resumed = model()
    fit(resumed, x[:200], x[200:], settings, checkpoint=checkpoint, bin_width=width)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
