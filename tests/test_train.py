"""fit(): every model learns on digits, determinism, divergence, early stopping with best-weight
restore, schedule, clipping, checkpoints without pickle and in-process resume equality."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from lpae import criteria
from lpae import train as train_module
from lpae.checkpoint import flatten_optimizer, load_checkpoint, unflatten_optimizer
from lpae.config import ModelSettings, TrainSettings
from lpae.models import Autoencoder, VariationalAutoencoder, build_model
from lpae.train import (
    EpochEnd,
    Progress,
    TrainResult,
    close_epoch,
    epoch_lr,
    fit,
    resolve_device,
    train_step,
)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    x = load_digits().data.astype(np.float32)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    x = torch.from_numpy(x.astype(np.float32))
    return x[:1200], x[1200:1500]


def make(model: str = "ae", loss: str = "lp:2", seed: int = 0, **settings: object) -> Autoencoder:
    torch.manual_seed(seed)
    options = {"hidden": (64,), "latent": 8, **settings}
    return build_model((64,), ModelSettings(model=model, **options), criteria.build(loss))  # type: ignore[arg-type]


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("model", ["ae", "dae", "vae"])
@pytest.mark.parametrize("loss", ["lp:0.5", "lp:1", "lp:2"])
def test_every_model_lowers_its_loss(
    digits: tuple[torch.Tensor, torch.Tensor], model: str, loss: str
) -> None:
    x_train, x_val = digits
    net = make(model, loss)
    result = fit(net, x_train, x_val, TrainSettings(epochs=4, batch_size=64, lr=3e-3, device="cpu"))
    assert result.status == "done" and result.epochs_run == 4
    first, last = result.history[0], result.history[-1]
    assert last["val_loss"] < first["val_loss"] and last["train_loss"] < first["train_loss"]
    if model != "vae":  # a VAE may trade reconstruction for KL early on; its objective must still fall
        assert last["val_recon_l2"] < first["val_recon_l2"]
    assert set(first) == {"epoch", "train_loss", "val_loss", "val_recon_l1", "val_recon_l2", "lr"}


@pytest.mark.parametrize(
    ("model", "loss"),
    [
        ("ae", "gaussian:scale=predicted"),  # two decoder channels per feature
        ("vae", "gennorm:p=learned,scale=learned"),
        ("dae", "student_t:df=learned,scale=learned"),
        ("vae", "laplace:scale=calibrated"),
    ],
)
def test_likelihood_criteria_train_with_their_learned_parameters(
    digits: tuple[torch.Tensor, torch.Tensor], model: str, loss: str
) -> None:
    x_train, x_val = digits
    torch.manual_seed(0)
    crit = criteria.build(loss, feature_shape=(64,))
    net = build_model((64,), ModelSettings(model=model, hidden=(64,), latent=8), crit)
    before = {k: v.clone() for k, v in crit.state_dict().items()}
    result = fit(net, x_train, x_val, TrainSettings(epochs=3, batch_size=64, lr=3e-3, device="cpu"))
    assert result.status == "done"
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    # the criterion's own parameters are optimised along with the network
    assert all(not torch.equal(before[k], v) for k, v in crit.state_dict().items() if v.is_floating_point())


def test_conv_model_learns(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    x_train, x_val = digits
    net = make("ae", arch="conv", hidden=(8, 16), image_shape=(1, 8, 8))
    result = fit(net, x_train, x_val, TrainSettings(epochs=3, batch_size=64, lr=3e-3, device="cpu"))
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]


@pytest.mark.parametrize("model", ["ae", "dae", "vae"])
def test_same_seed_same_result(digits: tuple[torch.Tensor, torch.Tensor], model: str) -> None:
    x_train, x_val = digits
    settings = TrainSettings(epochs=2, batch_size=100, seed=3, device="cpu")
    runs = [make(model, seed=3) for _ in range(2)]
    results = [fit(net, x_train, x_val, settings) for net in runs]
    assert results[0].history == results[1].history
    assert same_weights(weights(runs[0]), weights(runs[1]))
    other = make(model, seed=3)
    fit(other, x_train, x_val, TrainSettings(epochs=2, batch_size=100, seed=4, device="cpu"))
    assert not same_weights(weights(runs[0]), weights(other))


def test_divergence_returns_status_and_keeps_finite_weights(
    digits: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x_train, x_val = digits
    net = make("ae", hidden=(256, 128))
    initial = weights(net)
    result = fit(net, x_train, x_val, TrainSettings(epochs=5, lr=1e3, device="cpu"))
    assert result.status == "diverged" and "non-finite" in result.reason and "epoch 1" in result.reason
    assert all(torch.isfinite(v).all() for v in net.state_dict().values())
    assert same_weights(weights(net), initial)  # no finite epoch: the initial weights


def test_best_weights_are_restored(
    digits: tuple[torch.Tensor, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model ends holding the weights of the best validation epoch, not the last: validation
    losses are scripted (best at epoch 2 of 4), and each epoch's weights are recorded."""
    x_train, x_val = digits
    net = make("ae")
    scripted = iter([5.0, 3.0, 4.0, 6.0])
    monkeypatch.setattr(
        train_module,
        "validation_record",
        lambda *_, **__: {"val_loss": next(scripted), "val_recon_l1": 1.0, "val_recon_l2": 1.0},
    )
    seen: dict[int, dict[str, torch.Tensor]] = {}
    result = fit(
        net,
        x_train,
        x_val,
        TrainSettings(epochs=4, lr=0.01, device="cpu"),
        on_epoch=lambda record: seen.__setitem__(int(record["epoch"]), weights(net)),
    )
    assert result.best_epoch == 2 and result.epochs_run == 4
    assert same_weights(weights(net), seen[2]) and not same_weights(seen[2], seen[4])


def test_close_epoch_books_rows_best_epochs_patience_and_divergence() -> None:
    """The bookkeeping fit and lpae.fused share, epoch by epoch."""
    progress, result = Progress(), TrainResult()
    ends = []
    for epoch, val_loss in enumerate([3.0, 2.0, 2.5, 2.1], start=1):
        record = {"val_loss": val_loss, "val_recon_l1": 0.5, "val_recon_l2": 0.7}
        ends.append(close_epoch(progress, result, epoch, 0.01, 10.0 / epoch, record.copy, patience=2))
    assert [end.improved for end in ends] == [True, True, False, False]
    assert [end.stop for end in ends] == [False, False, False, True]  # patience 2 ran out
    assert (progress.epoch, progress.best_epoch, progress.best_loss, progress.since_best) == (4, 2, 2.0, 2)
    assert progress.history[1] == ends[1].record
    assert list(progress.history[1].items()) == [
        ("epoch", 2),
        ("train_loss", 5.0),
        ("val_loss", 2.0),
        ("val_recon_l1", 0.5),
        ("val_recon_l2", 0.7),
        ("lr", 0.01),
    ]
    assert result.status == "done"

    def never() -> dict[str, float]:
        raise AssertionError("no validation after a non-finite training loss")

    end = close_epoch(progress, result, 5, 0.01, math.nan, never, patience=None)
    assert end == EpochEnd(None, stop=True) and len(progress.history) == 4 and progress.epoch == 4
    assert (result.status, result.reason) == ("diverged", "non-finite training loss at epoch 5")
    other = TrainResult()
    end = close_epoch(Progress(), other, 2, 0.01, 1.0, lambda: {"val_loss": math.inf}, patience=None)
    assert end.stop and (other.status, other.reason) == ("diverged", "non-finite validation loss at epoch 2")


def test_early_stopping_waits_patience_epochs(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    x_train, x_val = digits
    result = fit(make("ae"), x_train, x_val, TrainSettings(epochs=30, lr=0.05, batch_size=32, patience=2))
    val_losses = [r["val_loss"] for r in result.history]
    assert result.epochs_run < 30
    assert result.epochs_run == result.best_epoch + 2
    assert min(val_losses[result.best_epoch :]) >= val_losses[result.best_epoch - 1]


def test_cosine_schedule_per_epoch() -> None:
    settings = TrainSettings(epochs=4, lr=0.1, schedule="cosine")
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert [epoch_lr(settings, e) for e in range(1, 5)] == pytest.approx(expected)
    assert epoch_lr(TrainSettings(lr=0.1), 3) == 0.1


def test_history_records_the_scheduled_lr(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    x_train, x_val = digits
    settings = TrainSettings(epochs=3, lr=0.01, schedule="cosine", optimizer="adamw", weight_decay=0.01)
    result = fit(make("ae"), x_train, x_val, settings)
    assert [r["lr"] for r in result.history] == pytest.approx([0.01, 0.0075, 0.0025])


def test_gradient_clipping_bounds_the_global_norm(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    net = make("ae")
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    train_step(net, optimizer, digits[0][:64], None, 0.0, clip=None)
    unclipped = torch.nn.utils.get_total_norm([p.grad for p in net.parameters() if p.grad is not None])
    assert unclipped > 1.0
    train_step(net, optimizer, digits[0][:64], None, 0.0, clip=0.5)
    clipped = torch.nn.utils.get_total_norm([p.grad for p in net.parameters() if p.grad is not None])
    assert float(clipped) == pytest.approx(0.5, rel=1e-4)


def test_progress_callback_gets_rate_and_loss(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    records: list[dict[str, float]] = []
    fit(make("ae"), *digits, TrainSettings(epochs=2), on_epoch=records.append)
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(
        r["samples_per_s"] > 0 and r["epochs"] == 2 and math.isfinite(r["train_loss"]) for r in records
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": 0}, "batch size must be a positive integer"),
        ({"lr": -1.0}, "learning rate must be a positive number"),
        ({"lr": math.nan}, "learning rate must be a positive number"),
        ({"optimizer": "sgd"}, "unknown optimizer 'sgd'; allowed: adam, adamw"),
        ({"schedule": "step"}, "unknown schedule 'step'"),
        ({"clip": 0.0}, "gradient clipping norm must be a positive number"),
        ({"patience": 0}, "patience must be a positive integer"),
        ({"checkpoint_every": -1}, "checkpoint_every must be an integer >= 0"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"weight_decay": -0.1}, "weight decay must be a number >= 0"),
    ],
)
def test_bad_train_settings_name_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainSettings(**kwargs)


def test_device_resolution() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path needs a machine without it")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA device is available"):
        resolve_device("cuda")


# --- checkpoints and resume --------------------------------------------------------------------


def test_optimizer_state_round_trips_through_tensors_and_json(
    digits: tuple[torch.Tensor, torch.Tensor],
) -> None:
    import json

    net = make("ae")
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.1)
    for _ in range(3):
        train_step(net, optimizer, digits[0][:64], None, 0.0, None)
    tensors, meta = flatten_optimizer(optimizer.state_dict())
    restored = unflatten_optimizer(tensors, json.loads(json.dumps(meta)))
    original = optimizer.state_dict()
    assert restored["state"].keys() == original["state"].keys()
    for index, values in original["state"].items():
        for name, value in values.items():
            assert torch.equal(restored["state"][index][name], value)
    fresh = torch.optim.AdamW(net.parameters(), lr=1.0)
    fresh.load_state_dict(restored)
    assert fresh.param_groups[0]["lr"] == 1e-3 and fresh.param_groups[0]["weight_decay"] == 0.1


class Interrupt(Exception):
    pass


@pytest.mark.parametrize(
    ("model", "settings"),
    [
        ("ae", {"optimizer": "adamw", "weight_decay": 0.01, "schedule": "cosine", "clip": 1.0}),
        ("dae", {"patience": 50}),
        ("vae", {"checkpoint_every": 2}),
    ],
)
def test_resume_ends_with_the_uninterrupted_weights(
    tmp_path: Path, digits: tuple[torch.Tensor, torch.Tensor], model: str, settings: dict
) -> None:
    x_train, x_val = digits
    options = {"kl_warmup": 3} if model == "vae" else {}
    train = TrainSettings(epochs=6, batch_size=128, seed=1, lr=3e-3, device="cpu", **settings)
    reference = make(model, seed=1, **options)
    expected = fit(reference, x_train, x_val, train)

    checkpoint = tmp_path / "checkpoint.safetensors"

    def stop_after_epoch_4(record: dict[str, float]) -> None:
        if record["epoch"] == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(make(model, seed=1, **options), x_train, x_val, train, checkpoint, on_epoch=stop_after_epoch_4)
    _, meta = load_checkpoint(checkpoint)
    assert meta["progress"]["epoch"] == (2 if train.checkpoint_every == 2 else 3)

    resumed_model = make(model, seed=99, **options)  # initial weights are replaced by the checkpoint's
    resumed = fit(resumed_model, x_train, x_val, train, checkpoint)
    assert resumed.resumed_from == meta["progress"]["epoch"]
    assert same_weights(weights(resumed_model), weights(reference))
    assert resumed.history == expected.history and resumed.best_epoch == expected.best_epoch


def test_checkpoint_is_safetensors_with_json_header(
    tmp_path: Path, digits: tuple[torch.Tensor, torch.Tensor]
) -> None:
    checkpoint = tmp_path / "ck.safetensors"
    fit(make("vae"), *digits, TrainSettings(epochs=3, checkpoint_every=1), checkpoint)
    raw = checkpoint.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert raw[8 : 8 + header_len].startswith(b"{")
    tensors, meta = load_checkpoint(checkpoint)
    assert meta["format"] == "lpae-checkpoint" and meta["progress"]["epoch"] == 2  # none after the last
    assert {"rng/shuffle", "rng/noise", "rng/torch"} <= set(tensors)
    assert any(k.startswith("optimizer/") for k in tensors) and any(k.startswith("best/") for k in tensors)
    assert not list(tmp_path.glob(".ck.safetensors.*")), "no temporary file is left behind"


def test_unreadable_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "checkpoint.safetensors"
    bad.write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(ValueError, match="not a readable lpae checkpoint"):
        load_checkpoint(bad)


@pytest.mark.parametrize("loss", ["lp:2", "lp:1"])
def test_iwae_64_is_at_least_the_elbo_on_a_trained_vae(
    digits: tuple[torch.Tensor, torch.Tensor], loss: str
) -> None:
    x_train, x_val = digits
    net = make("vae", loss)
    fit(net, x_train, x_val, TrainSettings(epochs=4, batch_size=64, lr=3e-3, device="cpu"))
    assert isinstance(net, VariationalAutoencoder)
    with torch.no_grad():
        elbo = net.elbo(x_val, n_samples=16, noise=torch.Generator().manual_seed(0)).mean()
        iwae = net.iwae(x_val, 64, noise=torch.Generator().manual_seed(1)).mean()
    assert math.isfinite(float(elbo)) and float(iwae) >= float(elbo)
