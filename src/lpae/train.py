"""Training: Adam over pre-shuffled in-memory batches, validation each epoch, best weights kept.

Plain functions, no Trainer hierarchy. ``fit`` returns a :class:`TrainResult` whose ``status`` is
"done" or "diverged" (a non-finite loss); it never raises for divergence, and on divergence the
model is left holding its last finite best weights, never NaN.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from lpae.models import Autoencoder


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 128
    seed: int = 0
    weight_decay: float = 0.0
    patience: int | None = None  # early stopping on validation loss; None = off

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs}")
        if self.batch_size <= 0:
            raise ValueError(f"batch size must be a positive integer, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if self.patience is not None and self.patience <= 0:
            raise ValueError(f"patience must be a positive integer, got {self.patience}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    status: str = "done"  # "done" or "diverged"
    reason: str = ""
    best_epoch: int = 0
    epochs_run: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


@torch.no_grad()
def validation_record(model: Autoencoder, x_val: Tensor, batch_size: int = 1024) -> dict[str, float]:
    """Validation loss (mean per-sample objective) and recon_l1 / recon_l2 of the point reconstruction."""
    was_training = model.training
    model.eval()
    loss_sum = abs_sum = sq_sum = 0.0
    for start in range(0, len(x_val), batch_size):
        xb = x_val[start : start + batch_size]
        out = model(xb)
        loss_sum += float(model.criterion(xb, out).sum())
        residual = model.criterion.reconstruct(out) - xb
        abs_sum += float(residual.abs().sum())
        sq_sum += float(residual.square().sum())
    model.train(was_training)
    n_elements = max(x_val.numel(), 1)
    return {
        "val_loss": loss_sum / max(len(x_val), 1),
        "val_recon_l1": abs_sum / n_elements,
        "val_recon_l2": math.sqrt(sq_sum / n_elements),
    }


def fit(model: Autoencoder, x_train: Tensor, x_val: Tensor, settings: TrainSettings) -> TrainResult:
    """Train ``model`` in place on x_train (N, *shape); validate on x_val each epoch."""
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    result = TrainResult()
    best_loss = math.inf
    best_state = copy.deepcopy(model.state_dict())
    since_best = 0
    started = time.perf_counter()
    model.train()
    for epoch in range(1, settings.epochs + 1):
        # One gather per epoch, then contiguous slices: no per-sample DataLoader.
        shuffled = x_train[torch.randperm(len(x_train), generator=generator)]
        loss_sum = 0.0
        for start in range(0, len(shuffled), settings.batch_size):
            xb = shuffled[start : start + settings.batch_size]
            loss = model.loss(xb).mean()
            if not torch.isfinite(loss):
                result.status, result.reason = "diverged", f"non-finite training loss at epoch {epoch}"
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(xb)
        if result.status == "diverged":
            break
        record = {"epoch": epoch, "train_loss": loss_sum / len(shuffled), **validation_record(model, x_val)}
        result.history.append(record)
        result.epochs_run = epoch
        if not math.isfinite(record["val_loss"]):
            result.status, result.reason = "diverged", f"non-finite validation loss at epoch {epoch}"
            break
        if record["val_loss"] < best_loss:
            best_loss, result.best_epoch, since_best = record["val_loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
            if settings.patience is not None and since_best >= settings.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    return result
