"""The fused fit loop: K members trained as one batched model, each exactly as lpae.train.fit would.

Nothing of a model's objective or of fit's bookkeeping is written here: the stacked members
(lpae.fused.stacked) are a ``lpae.models.Members`` group, so the step and validation call their
model class's ``member_objective`` and ``member_validation``, the very methods ``fit`` calls on
its model as a group of one, and each member's epoch is booked by lpae.train.close_epoch, as in
``fit``. A member the stacked model cannot batch exactly (other layers, parameters outside the
networks and criterion, conv) is refused with a ValueError. Per member, then:

- data: its own training and validation tensors (members may differ in preprocessing, split or
  contamination; equal tensors are shared), shuffled each epoch by its own CPU generator seeded
  with its seed, and cut into the same contiguous batches;
- noise: its own generator on the device seeded with seed + 1, drawn in the same order and shapes
  (a DAE's corruption of x, a VAE's reparameterisation noise (B, latent));
- the step: the batch mean of its per-sample objective (a VAE's with its KL weight), gradients by
  one backward pass of the sum over members (each member's parameters see only its own term),
  its own gradient clipping and Adam/AdamW state (lpae.fused.adam), its own learning rate schedule;
- validation after each epoch: the same record (val_loss, val_recon_l1, val_recon_l2) from the
  same chunks of 1024 rows and noise re-seeded with seed + 2; history rows with the same keys;
- divergence, early stopping and best-epoch bookkeeping (close_epoch) and the restore of the best
  weights.

A member stops when its epochs are done, its patience runs out, or its training or validation loss
turns non-finite (status "diverged", frozen at its best finite weights); the others go on, and the
stopped member's row leaves the batched model, so it costs nothing afterwards. Members never
interact: a NaN in one row cannot reach another (separate weights, per-member clipping, per-sample
losses).

What is not mirrored: checkpoints (a fused group is short; interrupted, it trains again from the
start), the ``on_epoch`` callback, and float32 reduction order (batched matrix products and
reductions may round differently, so members agree with solo training to about 1e-6 relative per
step, not bit for bit). ``TrainResult.seconds`` is the member's share of the group's wall time:
each epoch's time divided among the members that trained in it.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lpae.config import TrainSettings
from lpae.criteria.scale import parameter_rates
from lpae.fused.adam import TableAdam
from lpae.fused.stacked import StackedAutoencoders
from lpae.models import Autoencoder
from lpae.train import (
    ENERGY_FLOOR,
    NOISE_SEED_OFFSET,
    VALIDATION_SEED_OFFSET,
    Progress,
    TrainResult,
    close_epoch,
    energy_weight,
    epoch_lr,
    epoch_progress,
    resolve_device,
    scale_hold,
)

VALIDATION_BATCH = 1024  # as lpae.train.validation_record


@dataclass
class GroupData:
    """The members' tensors: equal ones stored once; ``source[k]`` is member k's block."""

    train: Tensor  # (U * N, *shape): the U distinct training sets, one after another
    val: Tensor  # (U, N_val, *shape)
    source: list[int]
    n_train: int
    n_val: int


def group_data(x_trains: Sequence[Tensor], x_vals: Sequence[Tensor], device: torch.device) -> GroupData:
    """Stack the members' data, each distinct (train, val) pair once (same tensor objects = same data)."""
    distinct: dict[tuple[int, int], int] = {}
    source = [
        distinct.setdefault((id(a), id(b)), len(distinct)) for a, b in zip(x_trains, x_vals, strict=True)
    ]
    firsts = {index: member for member, index in reversed(list(enumerate(source)))}
    order = [firsts[index] for index in range(len(distinct))]
    shapes = {(tuple(x_trains[m].shape), tuple(x_vals[m].shape)) for m in order}
    if len(shapes) != 1:
        raise ValueError(
            "members of a fused group need training and validation sets of equal shapes, got "
            + ", ".join(f"train {a} / val {b}" for a, b in sorted(shapes))
        )
    train = torch.cat([x_trains[m] for m in order]).to(device)
    val = torch.stack([x_vals[m] for m in order]).to(device)
    return GroupData(train, val, source, len(x_trains[0]), len(x_vals[0]))


def check_settings(settings: Sequence[TrainSettings]) -> None:
    """Raise ValueError unless the members can share batches (batch size), a device and the
    optimizer's layout of criterion columns (criterion_lr)."""
    for name in ("batch_size", "device", "criterion_lr"):
        values = {getattr(s, name) for s in settings}
        if len(values) > 1:
            raise ValueError(f"members of a fused group must share {name}, got {sorted(map(str, values))}")


def optimizer_key(settings: TrainSettings) -> tuple[float, str, int, float, str]:
    """Members with equal keys get equal Adam updates' settings at every epoch."""
    return (settings.lr, settings.schedule, settings.epochs, settings.weight_decay, settings.optimizer)


class FusedGroup:
    """The state of a fused training run: stacked model, optimizer and per-member bookkeeping."""

    def __init__(
        self,
        models: Sequence[Autoencoder],
        x_trains: Sequence[Tensor],
        x_vals: Sequence[Tensor],
        settings: Sequence[TrainSettings],
    ) -> None:
        if not models:
            raise ValueError("a fused group needs at least one member")
        if not (len(models) == len(x_trains) == len(x_vals) == len(settings)):
            raise ValueError("a fused group needs one training set, validation set and settings per member")
        check_settings(settings)
        self.device = resolve_device(settings[0].device)
        self.models = list(models)
        self.settings = list(settings)
        self.data = group_data(x_trains, x_vals, self.device)
        # Rows sorted by optimizer settings: members updated alike sit in one block of the table.
        order = sorted(range(len(models)), key=lambda m: (optimizer_key(settings[m]), m))
        schedules = [(s.epochs, s.continuation) for s in settings]
        self.stacked = StackedAutoencoders(models, self.device, order, schedules)
        self.batch_size = settings[0].batch_size
        self.optimizer = TableAdam(
            self.stacked.values.shape[1],
            len(models),
            self.device,
            [settings[m].weight_decay for m in order],
            [settings[m].optimizer == "adamw" for m in order],
            [settings[m].clip for m in order],
            criterion_lr=self.criterion_lr(order),
        )
        self.shuffles = [torch.Generator().manual_seed(s.seed) for s in settings]
        self.noises = [
            torch.Generator(device=self.device).manual_seed(s.seed + NOISE_SEED_OFFSET) for s in settings
        ]

    def criterion_lr(self, order: Sequence[int]) -> Tensor | None:
        """(K, C) learning rates of the criterion columns, rows in table order, as
        lpae.train.make_optimizer gives each criterion parameter; None without criterion_lr."""
        base = self.settings[0].criterion_lr
        stacked = self.stacked
        n_columns = stacked.values.shape[1] - stacked.model_size
        if base is None or n_columns == 0:
            return None
        table = torch.full((len(order), n_columns), base, device=self.device)
        for row, member in enumerate(order):
            rates = parameter_rates(self.models[member].criterion)
            for name, start, shape in stacked.criterion_slots[member]:
                first = start - stacked.model_size
                table[row, first : first + math.prod(shape)] = base / rates[name]
        return table

    @property
    def rows(self) -> list[int]:
        """Member index of each row of the batched model (the members still training)."""
        return self.stacked.rows

    def keep(self, positions: Sequence[int]) -> None:
        """Go on with the rows at ``positions`` only."""
        self.stacked.keep(positions)
        self.optimizer.keep(positions)

    def validation_rows(self, start: int, stop: int) -> Tensor:
        """Validation rows start:stop of every active member: (K, b, *shape)."""
        index = torch.as_tensor([self.data.source[m] for m in self.rows], device=self.device)
        return self.data.val[:, start:stop].index_select(0, index)

    def train_epoch(
        self, lr: Sequence[float], kl_weights: Sequence[float], weights: Sequence[float | None]
    ) -> list[float]:
        """One pass over every member's data in its own fresh order; the mean training objectives.

        ``weights``: each row's factor on its batch losses (lpae.train.energy_weight; None: 1 / its
        first batch's loss), as lpae.train.train_epoch."""
        rows, n_train, batch_size = self.rows, self.data.n_train, self.batch_size
        offsets = torch.tensor([self.data.source[m] * n_train for m in rows]).unsqueeze(1)
        orders = torch.stack([torch.randperm(n_train, generator=self.shuffles[m]) for m in rows])  # (K, N)
        index = (orders + offsets).to(self.device)
        noises = [self.noises[m] for m in rows]
        stacked, shape = self.stacked, self.stacked.sample_shape
        kind = type(stacked.template)  # every member's class: its objective is theirs
        loss_sums = torch.zeros(len(rows), dtype=torch.float64, device=self.device)
        factors: Tensor | None = None  # (K,), set at the first batch
        for start in range(0, n_train, batch_size):
            batch_index = index[:, start : start + batch_size]  # (K, b)
            size = batch_index.shape[1]
            xb = self.data.train.index_select(0, batch_index.reshape(-1)).view(len(rows), size, *shape)
            objective, _ = kind.member_objective(stacked, xb, noises, kl_weights)  # (K, b)
            member_loss = objective.mean(dim=1)  # (K,)
            if factors is None:
                first = 1.0 / member_loss.detach().clamp_min(ENERGY_FLOOR)
                given = [
                    first[i] if w is None else torch.tensor(w, device=self.device)
                    for i, w in enumerate(weights)
                ]
                factors = torch.stack(given).to(member_loss.dtype)
            stacked.grads.zero_()
            with warnings.catch_warnings():
                # Gradients accumulate in place into views of the gradient table, which torch
                # reports once as not matching its preferred layout; that is intended here.
                warnings.filterwarnings("ignore", message="grad and param do not obey")
                (member_loss if all(w == 1.0 for w in weights) else member_loss * factors).sum().backward()
            self.optimizer.step(stacked.values, stacked.grads, lr)
            loss_sums.add_(member_loss.detach(), alpha=size)
        return (loss_sums / n_train).tolist()

    @torch.no_grad()
    def validation_records(self) -> list[dict[str, float]]:
        """Each active member's lpae.train.validation_record, computed for all at once."""
        rows = self.rows
        noises = [
            torch.Generator(device=self.device).manual_seed(self.settings[m].seed + VALIDATION_SEED_OFFSET)
            for m in rows
        ]
        kl_weights = [self.models[m].kl_weight(None) for m in rows]
        kind = type(self.stacked.template)
        sums = torch.zeros(len(rows), 3, dtype=torch.float64, device=self.device)  # loss, |r|, r^2
        for start in range(0, self.data.n_val, VALIDATION_BATCH):
            xb = self.validation_rows(start, start + VALIDATION_BATCH)  # (K, b, *shape)
            objective, x_hat = kind.member_validation(self.stacked, xb, noises, kl_weights)
            residual = x_hat - xb  # (K, b, *shape)
            sums[:, 0] += objective.sum(dim=1, dtype=torch.float64)
            sums[:, 1] += residual.abs().flatten(1).sum(dim=1, dtype=torch.float64)
            sums[:, 2] += residual.square().flatten(1).sum(dim=1, dtype=torch.float64)
        n_samples = max(self.data.n_val, 1)
        n_elements = max(self.data.n_val * math.prod(self.stacked.sample_shape), 1)
        return [
            {
                "val_loss": loss_sum / n_samples,
                "val_recon_l1": abs_sum / n_elements,
                "val_recon_l2": math.sqrt(sq_sum / n_elements),
            }
            for loss_sum, abs_sum, sq_sum in sums.tolist()
        ]


def fit_group(
    models: Sequence[Autoencoder],
    x_trains: Sequence[Tensor],
    x_vals: Sequence[Tensor],
    settings: Sequence[TrainSettings],
) -> list[TrainResult]:
    """Train member k (``models[k]`` on ``x_trains[k]``, validated on ``x_vals[k]``, with
    ``settings[k]``) as :func:`lpae.train.fit` would, all in one batched model.

    Members must be MLP autoencoders of one kind and shape (their decoders' output widths may
    differ) with equal data sizes, batch size and device, each one the stacked model can batch
    (lpae.fused.stacked.batch_problem); otherwise ValueError, before any training. Each model
    ends on the CPU holding its best weights, in eval mode; one TrainResult per member, in order.
    """
    on = [k for k, s in enumerate(settings) if s.dequantize == "on"]
    if on:
        raise ValueError(
            f"fit_group: member(s) {on} train on dequantized data, which only lpae.train.fit draws"
        )
    group = FusedGroup(models, x_trains, x_vals, settings)
    n_members = len(models)
    progress = [Progress() for _ in range(n_members)]
    results = [TrainResult() for _ in range(n_members)]
    running = [True] * n_members
    best = torch.empty_like(group.stacked.values)  # (K, P): row k = member k's best weights so far
    best[torch.as_tensor(group.rows, device=best.device)] = group.stacked.values
    for epoch in range(1, max(s.epochs for s in settings) + 1):
        positions = [i for i, m in enumerate(group.rows) if running[m] and settings[m].epochs >= epoch]
        if not positions:
            break
        if len(positions) < len(group.rows):
            group.keep(positions)
        rows = group.rows
        started = time.perf_counter()
        lr = [epoch_lr(settings[m], epoch) for m in rows]
        for m in rows:  # continuation, as lpae.train.fit: each member's own schedule
            models[m].criterion.anneal(epoch_progress(settings[m], epoch))
        weights = [energy_weight(models[m], settings[m], progress[m].history) for m in rows]
        for m in rows:  # epoch calibration, as lpae.train.fit
            models[m].criterion.hold_scale(scale_hold(settings[m], progress[m]))
        train_losses = group.train_epoch(lr, [models[m].kl_weight(epoch) for m in rows], weights)
        for m in rows:
            progress[m].calibrated_scale = models[m].criterion.observed_scale()
            models[m].criterion.hold_scale(None)
            models[m].criterion.anneal(1.0)  # validation sees the target criterion
        records = group.validation_records()
        share = (time.perf_counter() - started) / len(rows)
        for position, member in enumerate(rows):
            results[member].seconds += share
            end = close_epoch(
                progress[member],
                results[member],
                epoch,
                lr[position],
                train_losses[position],
                records[position].copy,  # validated already, every member at once
                settings[member].patience,
            )
            if end.improved:
                best[member] = group.stacked.values[position]
            if end.stop:
                running[member] = False
    for member, model in enumerate(models):
        group.stacked.release(member, best[member])
        model.eval()
        result, state = results[member], progress[member]
        result.best_epoch, result.epochs_run, result.history = state.best_epoch, state.epoch, state.history
    return results
