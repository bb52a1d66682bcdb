"""Training: Adam or AdamW over pre-shuffled in-memory batches, validation each epoch, best weights kept.

Plain functions, no Trainer hierarchy. One epoch (:func:`train_epoch`) gathers the training
tensor in a fresh random order, a chunk of rows at a time, and steps over contiguous slices: no
per-sample DataLoader (or reads block-shuffled batches from disk, lpae.data.stream).
Each step minimises the batch mean of the model's per-sample objective (B values), the one its
class defines for every trainer (``member_objective``, lpae.models; here the model is a group of
one), optionally after clipping the global gradient norm. The learning rate is constant or
follows a cosine schedule per epoch, lr_e = lr * (1 + cos(pi * (e - 1) / epochs)) / 2 for
e = 1..epochs. A non-convex criterion trains on its convex surrogate for the first
``continuation`` fraction of the epochs, deforming into the target criterion
(lpae.criteria.continuation); validation always uses the target.

Validation after every epoch records ``val_loss`` (mean per-sample objective, the KL term at its
full weight, noise re-seeded identically each epoch so epochs compare) and the point
reconstruction's ``val_recon_l1`` = mean |r| and ``val_recon_l2`` = sqrt(mean r^2), whatever the
training loss, so that convergence speed compares across losses.

Randomness, all from ``settings.seed``: shuffling uses a CPU generator seeded with seed; the
model's noise (DAE corruption, VAE reparameterisation) a generator on the training device seeded
with seed + 1; validation noise one seeded with seed + 2; dequantization noise (``bin_width``,
lpae.dequantize) one seeded with seed + 3. Same seed and settings give identical results on the
CPU.

``fit`` returns a :class:`TrainResult` whose ``status`` is "done" or "diverged" (a non-finite
training or validation loss); it never raises for divergence, and it always leaves the model
holding its best finite weights (the initial ones if no epoch finished), never NaN. The
bookkeeping after each epoch (history row, divergence, best epoch, patience) is
:func:`close_epoch`, which lpae.fused calls for each of its members too.

With a ``checkpoint`` path, every ``checkpoint_every`` epochs the whole training state is written
there atomically (lpae.checkpoint); if that file exists when ``fit`` starts, training continues
from it and ends with exactly the weights an uninterrupted run would have.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from lpae.checkpoint import (
    flatten_optimizer,
    generator_states,
    load_checkpoint,
    prefixed,
    restore_generators,
    save_checkpoint,
    unflatten_optimizer,
    unprefixed,
)
from lpae.config import DEVICES, TrainSettings
from lpae.criteria import continuation
from lpae.criteria.scale import parameter_rates
from lpae.data.stream import StreamedRows, shuffled_batches
from lpae.dequantize import DEQUANTIZE_SEED_OFFSET, dequantizer
from lpae.models import Autoencoder, GroupOfOne

NOISE_SEED_OFFSET = 1
ENERGY_FLOOR = 1e-12  # the smallest mean loss an energy weight divides by
VALIDATION_SEED_OFFSET = 2


def epoch_progress(settings: TrainSettings, epoch: int) -> float:
    """Continuation progress t of a 1-based epoch (lpae.criteria.continuation); 1 = the target."""
    return continuation.progress(epoch, settings.epochs, settings.continuation)


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu; cuda without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda: no CUDA device is available here (use --device cpu or auto)")
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; allowed: {', '.join(DEVICES)}")
    return torch.device(name)


@dataclass
class TrainResult:
    status: str = "done"  # "done" or "diverged"
    reason: str = ""
    best_epoch: int = 0
    epochs_run: int = 0
    seconds: float = 0.0
    resumed_from: int = 0  # epoch of the checkpoint training continued from; 0 = fresh start
    history: list[dict[str, float]] = field(default_factory=list)


EpochCallback = Callable[[dict[str, float]], None]


def make_optimizer(model: Autoencoder, settings: TrainSettings) -> torch.optim.Optimizer:
    """Adam or AdamW, with PyTorch's fused kernel (one call updates every parameter) where the
    device supports it: for small models the per-parameter Python loop of the default
    implementation costs a third of a step. The arithmetic is Adam's either way.

    Param group 0 holds the network and follows ``settings.lr`` and its schedule. With a
    ``criterion_lr``, the criterion's learned parameters train in groups of their own (marked
    ``criterion``): a parameter of rate k (lpae.criteria.scale.parameter_rates) at the constant
    lr criterion_lr / k, without weight decay, and outside gradient clipping (:func:`train_step`).
    """
    kind = torch.optim.AdamW if settings.optimizer == "adamw" else torch.optim.Adam
    groups = [
        {"params": params, "lr": lr, "weight_decay": decay, "criterion": criterion}
        for params, lr, decay, criterion in parameter_groups(model, settings)
    ]
    try:
        return kind(groups, lr=settings.lr, fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
        return kind(groups, lr=settings.lr)


def parameter_groups(
    model: Autoencoder, settings: TrainSettings
) -> list[tuple[list[torch.nn.Parameter], float, float, bool]]:
    """(parameters, lr, weight decay, is a criterion group) of :func:`make_optimizer`'s groups."""
    if settings.criterion_lr is None:
        return [(list(model.parameters()), settings.lr, settings.weight_decay, False)]
    rates = parameter_rates(model.criterion)
    criterion_params = dict(model.criterion.named_parameters())
    own = {id(param) for param in criterion_params.values()}
    network = [param for param in model.parameters() if id(param) not in own]
    by_rate: dict[float, list[torch.nn.Parameter]] = {}
    for name, param in criterion_params.items():
        by_rate.setdefault(rates[name], []).append(param)
    groups = [(network, settings.lr, settings.weight_decay, False)]
    groups += [(params, settings.criterion_lr / rate, 0.0, True) for rate, params in by_rate.items()]
    return groups


def energy_weight(
    model: Autoencoder, settings: TrainSettings, history: list[dict[str, float]]
) -> float | None:
    """The factor w on an epoch's batch losses: 1, or under ``normalize="energy"`` for a plain loss
    1 / (the previous epoch's mean training loss), None in the first epoch (:func:`train_epoch`
    then takes 1 / the first batch's loss).

    Why (issue 15): Adam's step, lr m / sqrt(v), is invariant to a constant scale of the gradient
    but not to one that shrinks while v still remembers its early, larger values (beta2 = 0.999:
    about 1,000 steps, longer than most runs). A plain energy's gradient shrinks with the loss,
    so its effective step decays, while the same family's likelihood with a calibrated scale,
    e.g. gaussian:scale=calibrated, 0.5 log mean r^2 + const, has gradient grad E / (2E) and keeps
    its step. On synthetic Gaussian data (quick preset's model, 25 epochs, 3 seeds) l2 ended at
    test MSE 0.0101 against gaussian:scale=calibrated's 0.0085, and 0.0083 normalised. Dividing by
    a number fixed for the epoch is a step-size schedule: it leaves the loss and its minimisers
    as they are. Likelihoods are left alone (their NLL may be near 0 or negative)."""
    if settings.normalize == "none" or model.criterion.is_likelihood:
        return 1.0
    if not history:
        return None
    return 1.0 / max(history[-1]["train_loss"], ENERGY_FLOOR)


def scale_hold(settings: TrainSettings, progress: Progress) -> float | None:
    """The scale a ``scale=calibrated`` likelihood holds over an epoch: under ``normalize="epoch"``
    the mean ML scale of the previous epoch's batches (lpae.criteria.scale, "Epoch calibration");
    None (each batch's own) in the first epoch and under the other settings."""
    return progress.calibrated_scale if settings.normalize == "epoch" else None


def epoch_lr(settings: TrainSettings, epoch: int) -> float:
    """Learning rate of a 1-based epoch under the schedule."""
    if settings.schedule == "cosine":
        return settings.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / settings.epochs))
    return settings.lr


def train_step(
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    xb: Tensor,
    noise: torch.Generator | None,
    kl_weight: float,
    clip: float | None,
    weight: float | Tensor | None = 1.0,
) -> Tensor:
    """One optimiser step on ``weight`` times the batch's mean objective (None: divided by its own
    detached value); returns the mean objective, detached (no sync). Clipping acts on the
    network's parameters (param group 0)."""
    # The model's own objective, as lpae.fused runs it for many members: here a group of one.
    objective, _ = model.member_objective(GroupOfOne(model), xb, [noise], [kl_weight])  # (B,)
    loss = objective.mean()
    if weight is None:
        weight = 1.0 / loss.detach().clamp_min(ENERGY_FLOOR)
    optimizer.zero_grad(set_to_none=True)
    (loss if isinstance(weight, float) and weight == 1.0 else loss * weight).backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], clip)
    optimizer.step()
    return loss.detach()


def train_epoch(
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    x_train: Tensor | StreamedRows,
    settings: TrainSettings,
    shuffle: torch.Generator,
    noise: torch.Generator | None,
    kl_weight: float,
    weight: float | None = 1.0,
    dequantize: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """One pass over x_train in a fresh order; returns the mean training objective as a tensor.

    ``weight`` multiplies each batch's loss (:func:`energy_weight`); None: 1 / the first batch's
    loss. ``dequantize``: noise added to each batch (lpae.dequantize)."""
    n_samples = len(x_train)
    # Accumulated on the device, read once per epoch: no host sync per step.
    loss_sum = torch.zeros((), dtype=torch.float64, device=x_train.device)
    factor: float | Tensor | None = weight
    # a randperm order gathered a chunk at a time, or block-shuffled from disk (lpae.data.stream)
    for xb in shuffled_batches(x_train, settings.batch_size, shuffle):
        if dequantize is not None:
            xb = dequantize(xb)
        loss = train_step(model, optimizer, xb, noise, kl_weight, settings.clip, factor)
        if factor is None:  # the first batch of a normalised run set the epoch's factor
            factor = 1.0 / loss.clamp_min(ENERGY_FLOOR)
        loss_sum.add_(loss, alpha=len(xb))
    return loss_sum / n_samples


@torch.no_grad()
def validation_record(
    model: Autoencoder, x_val: Tensor | StreamedRows, seed: int = 0, batch_size: int = 1024
) -> dict[str, float]:
    """val_loss (mean per-sample objective at full KL weight), val_recon_l1 and val_recon_l2."""
    was_training = model.training
    model.eval()
    noise = torch.Generator(device=x_val.device).manual_seed(seed + VALIDATION_SEED_OFFSET)
    kl_weight = model.kl_weight(None)
    members = GroupOfOne(model)
    sums = torch.zeros(3, dtype=torch.float64, device=x_val.device)  # loss, |r|, r^2
    for start in range(0, len(x_val), batch_size):
        xb = x_val[start : start + batch_size]
        objective, x_hat = model.member_validation(members, xb, [noise], [kl_weight])  # (b,), like xb
        residual = x_hat - xb
        sums[0] += objective.sum(dtype=torch.float64)
        sums[1] += residual.abs().sum(dtype=torch.float64)
        sums[2] += residual.square().sum(dtype=torch.float64)
    model.train(was_training)
    loss_sum, abs_sum, sq_sum = sums.tolist()
    n_elements = max(x_val.numel(), 1)
    return {
        "val_loss": loss_sum / max(len(x_val), 1),
        "val_recon_l1": abs_sum / n_elements,
        "val_recon_l2": math.sqrt(sq_sum / n_elements),
    }


@dataclass
class Progress:
    """The bookkeeping a checkpoint carries besides tensors."""

    epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    since_best: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    calibrated_scale: float | None = None  # the last epoch's mean batch ML scale (scale_hold)


@dataclass(frozen=True)
class EpochEnd:
    """What :func:`close_epoch` decided about a finished epoch."""

    record: dict[str, float] | None  # the history row; None when the epoch diverged
    improved: bool = False  # a new best validation loss: keep these weights
    stop: bool = False  # diverged, or patience ran out


def close_epoch(
    progress: Progress,
    result: TrainResult,
    epoch: int,
    lr: float,
    train_loss: float,
    validate: Callable[[], dict[str, float]],
    patience: int | None,
) -> EpochEnd:
    """Book a finished epoch: the per-epoch bookkeeping of fit, and of lpae.fused for each member.

    A non-finite training loss (before ``validate`` is called) or validation loss marks ``result``
    "diverged", with the reason, and records nothing. Otherwise the history row {epoch,
    train_loss, **validate(), lr} joins ``progress``; a val_loss below the best so far makes this
    the best epoch (since_best = 0), any other counts since_best up, and training stops once
    since_best reaches ``patience`` (None: never).
    """
    if not math.isfinite(train_loss):
        result.status, result.reason = "diverged", f"non-finite training loss at epoch {epoch}"
        return EpochEnd(None, stop=True)
    record = {"epoch": epoch, "train_loss": train_loss, **validate(), "lr": lr}
    if not math.isfinite(record["val_loss"]):
        result.status, result.reason = "diverged", f"non-finite validation loss at epoch {epoch}"
        return EpochEnd(None, stop=True)
    progress.history.append(record)
    progress.epoch = epoch
    improved = record["val_loss"] < progress.best_loss
    if improved:
        progress.best_loss, progress.best_epoch, progress.since_best = record["val_loss"], epoch, 0
    else:
        progress.since_best += 1
    return EpochEnd(record, improved, stop=patience is not None and progress.since_best >= patience)


def snapshot(model: torch.nn.Module) -> dict[str, Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def write_checkpoint(
    path: Path,
    model: torch.nn.Module,
    best: dict[str, Tensor],
    optimizer: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
    progress: Progress,
) -> None:
    optimizer_tensors, optimizer_meta = flatten_optimizer(optimizer.state_dict())
    tensors = {
        **prefixed("model", model.state_dict()),
        **prefixed("best", best),
        **optimizer_tensors,
        **generator_states(generators),
    }
    save_checkpoint(path, tensors, {"progress": asdict(progress), "optimizer": optimizer_meta})


def read_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
    device: torch.device,
) -> tuple[dict[str, Tensor], Progress]:
    """Restore model, optimizer and generators from ``path``; return the best weights and progress."""
    tensors, meta = load_checkpoint(path)
    try:
        model.load_state_dict(unprefixed("model", tensors))
        optimizer.load_state_dict(unflatten_optimizer(tensors, meta["optimizer"]))
        restore_generators(tensors, generators)
        best = {name: tensor.to(device) for name, tensor in unprefixed("best", tensors).items()}
        return best, Progress(**meta["progress"])
    except (RuntimeError, KeyError, TypeError, ValueError) as error:  # damaged, edited or foreign
        detail = " ".join(str(error).split())[:200]
        raise ValueError(
            f"{path}: the checkpoint does not fit this run ({detail}); pass --overwrite to start over"
        ) from None


def fit(
    model: Autoencoder,
    x_train: Tensor | StreamedRows,
    x_val: Tensor | StreamedRows,
    settings: TrainSettings,
    checkpoint: Path | None = None,
    on_epoch: EpochCallback | None = None,
    bin_width: Tensor | None = None,
) -> TrainResult:
    """Train ``model`` in place on x_train (N, *shape); validate on x_val each epoch. Either may
    be rows read from disk (lpae.data.stream.StreamedRows) instead of a tensor.

    The model ends on the training device (``settings.device``) holding its best weights.
    ``on_epoch`` receives, after each epoch, its history record plus ``epochs`` and
    ``samples_per_s`` (training samples per second of that epoch, validation excluded).
    ``bin_width`` (shape of one sample): train on uniformly dequantized batches (lpae.dequantize),
    noise from a generator seeded with seed + DEQUANTIZE_SEED_OFFSET.
    """
    device = resolve_device(settings.device)
    model.to(device)
    x_train, x_val = x_train.to(device), x_val.to(device)
    optimizer = make_optimizer(model, settings)
    shuffle = torch.Generator().manual_seed(settings.seed)
    noise = torch.Generator(device=device).manual_seed(settings.seed + NOISE_SEED_OFFSET)
    generators = {"shuffle": shuffle, "noise": noise}
    dequantize = None
    if bin_width is not None:
        generators["dequantize"] = torch.Generator(device=device).manual_seed(
            settings.seed + DEQUANTIZE_SEED_OFFSET
        )
        dequantize = dequantizer(bin_width.to(device), generators["dequantize"])
    result = TrainResult()
    progress = Progress()
    best = snapshot(model)
    if checkpoint is not None and Path(checkpoint).is_file():
        best, progress = read_checkpoint(Path(checkpoint), model, optimizer, generators, device)
        result.resumed_from = progress.epoch
    started = time.perf_counter() - progress.seconds
    model.train()
    for epoch in range(progress.epoch + 1, settings.epochs + 1):
        lr = epoch_lr(settings, epoch)
        for group in optimizer.param_groups:
            if not group["criterion"]:  # criterion groups keep their constant lr
                group["lr"] = lr
        epoch_started = time.perf_counter()
        model.criterion.anneal(epoch_progress(settings, epoch))  # continuation: surrogate, then target
        weight = energy_weight(model, settings, progress.history)
        model.criterion.hold_scale(scale_hold(settings, progress))
        train_loss = float(
            train_epoch(
                model,
                optimizer,
                x_train,
                settings,
                shuffle,
                noise,
                model.kl_weight(epoch),
                weight,
                dequantize,
            )
        )
        progress.calibrated_scale = model.criterion.observed_scale()
        model.criterion.hold_scale(None)
        model.criterion.anneal(1.0)  # validation, best epoch and metrics see the target criterion
        samples_per_s = len(x_train) / max(time.perf_counter() - epoch_started, 1e-9)
        end = close_epoch(
            progress,
            result,
            epoch,
            lr,
            train_loss,
            lambda: validation_record(model, x_val, settings.seed),
            settings.patience,
        )
        if end.record is None:  # diverged
            break
        if end.improved:
            best = snapshot(model)
        if on_epoch is not None:
            on_epoch({**end.record, "epochs": settings.epochs, "samples_per_s": samples_per_s})
        if end.stop:
            break
        every = settings.checkpoint_every
        if checkpoint is not None and every and epoch % every == 0 and epoch < settings.epochs:
            progress.seconds = time.perf_counter() - started
            write_checkpoint(Path(checkpoint), model, best, optimizer, generators, progress)
    model.criterion.anneal(1.0)
    model.load_state_dict(best)
    model.eval()
    result.best_epoch, result.epochs_run, result.history = (
        progress.best_epoch,
        progress.epoch,
        progress.history,
    )
    result.seconds = time.perf_counter() - started
    return result
