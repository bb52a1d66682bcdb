"""Autoencoder models: an encoder to a latent code z and a decoder back to the criterion's outputs.

The decoder emits ``criterion.n_outputs`` channels per input feature, stacked along dim 1
(see lpae.criteria.base), so every criterion works with every model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lpae.criteria import Criterion

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


@dataclass(frozen=True)
class ModelSettings:
    """What it takes to rebuild a model; stored in config.json."""

    model: str = "ae"
    arch: str = "mlp"
    hidden: tuple[int, ...] = (256, 128)
    latent: int = 16
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.latent <= 0:
            raise ValueError(f"latent size must be a positive integer, got {self.latent}")
        if any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden sizes must be positive integers, got {list(self.hidden)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; allowed: {', '.join(ACTIVATIONS)}")


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers of the given sizes with the activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """Deterministic MLP autoencoder: x (B, *shape) -> z (B, latent) -> out (B, n_outputs * ...)."""

    def __init__(self, shape: Sequence[int], settings: ModelSettings, criterion: Criterion) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.settings = settings
        self.criterion = criterion
        n_features = int(np.prod(self.shape))
        self.encoder = mlp([n_features, *settings.hidden, settings.latent], settings.activation)
        self.decoder = mlp(
            [settings.latent, *reversed(settings.hidden), n_features * criterion.n_outputs],
            settings.activation,
        )

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x.flatten(1))

    def decode(self, z: Tensor) -> Tensor:
        out = self.decoder(z)  # (B, n_outputs * D)
        # Channels of one output stay contiguous along dim 1: (B, n_outputs * C, H, W) for images.
        return out.reshape(out.shape[0], self.shape[0] * self.criterion.n_outputs, *self.shape[1:])

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: Tensor, target: Tensor | None = None) -> Tensor:
        """Per-sample training objective (B,): the criterion of the target given the decoding of x."""
        return self.criterion(x if target is None else target, self(x))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return self.criterion.reconstruct(self(x))


def build_model(shape: Sequence[int], settings: ModelSettings, criterion: Criterion) -> Autoencoder:
    if settings.model != "ae" or settings.arch != "mlp":
        raise ValueError(f"model {settings.model!r} with arch {settings.arch!r} is not available yet")
    return Autoencoder(shape, settings, criterion)
