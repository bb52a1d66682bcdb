"""Input corruptions of the denoising autoencoder (Vincent et al. 2010, JMLR, section 4.2).

A denoising AE encodes a corrupted x_tilde ~ q(x_tilde | x) and is trained to reconstruct the
clean x. Three corruption processes, named by spec:

- ``gaussian:std=S``: x_tilde = x + S * eps, eps ~ N(0, 1) per element (isotropic Gaussian noise).
- ``mask:rate=R``: each element is set to 0 with probability R (masking noise). On standardised
  data 0 is the feature's training mean.
- ``saltpepper:rate=R[,low=L,high=H]``: each element is set, with probability R, to the low or the
  high value (each with probability 1/2). ``low``/``high`` default to ``auto``: the minimum and
  maximum of the sample itself, the black and white of an image.

Every corruption draws exactly one tensor of x's shape from the ``generator`` it is given (normal
for gaussian, uniform for mask and saltpepper), so a run is reproduced by re-seeding that generator;
the fused trainer mirrors this by holding one such generator per member.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lpae.spec import Number, Param, Registry


class Corruption:
    """Base class: ``corrupt(x, generator)`` returns x_tilde with x's shape, dtype and device."""

    name = ""

    def __init__(self, **spec_values: Any) -> None:
        self.spec_values = dict(spec_values)

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def __str__(self) -> str:
        return CORRUPTIONS.canonical(self.name, self.spec_values)

    def __repr__(self) -> str:
        return f"Corruption({self})"


class GaussianNoise(Corruption):
    name = "gaussian"

    def __init__(self, std: float) -> None:
        super().__init__(std=std)
        self.std = float(std)

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + self.std * noise


class MaskingNoise(Corruption):
    name = "mask"

    def __init__(self, rate: float) -> None:
        super().__init__(rate=rate)
        self.rate = float(rate)

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        uniform = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return torch.where(uniform < self.rate, torch.zeros_like(x), x)


class SaltPepperNoise(Corruption):
    name = "saltpepper"

    def __init__(self, rate: float, low: float | str = "auto", high: float | str = "auto") -> None:
        super().__init__(rate=rate, low=low, high=high)
        self.rate = float(rate)
        self.low = low
        self.high = high

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        uniform = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        flat = x.reshape(len(x), -1)  # (B, D)
        extra = (1,) * (x.dim() - 1)
        low = flat.amin(dim=1).reshape(-1, *extra) if self.low == "auto" else torch.tensor(self.low)
        high = flat.amax(dim=1).reshape(-1, *extra) if self.high == "auto" else torch.tensor(self.high)
        # One draw decides both whether and how: u < R/2 -> low ("pepper"), R/2 <= u < R -> high.
        x_tilde = torch.where(uniform < self.rate / 2, low.to(x), x)
        return torch.where((uniform >= self.rate / 2) & (uniform < self.rate), high.to(x), x_tilde)


CORRUPTIONS: Registry[Corruption] = Registry("corruption")
CORRUPTIONS.register(
    "gaussian",
    GaussianNoise,
    [Param("std", Number(low=0), help="standard deviation of the added noise")],
    summary="additive isotropic Gaussian noise",
)
CORRUPTIONS.register(
    "mask",
    MaskingNoise,
    [Param("rate", Number(low=0, high=1, high_open=True), help="probability of zeroing an element")],
    summary="masking noise: elements set to 0",
)
CORRUPTIONS.register(
    "saltpepper",
    SaltPepperNoise,
    [
        Param("rate", Number(low=0, high=1, high_open=True), help="probability of replacing an element"),
        Param("low", Number(keywords=("auto",)), "auto", help="pepper value; auto = the sample's minimum"),
        Param("high", Number(keywords=("auto",)), "auto", help="salt value; auto = the sample's maximum"),
    ],
    summary="salt-and-pepper noise: elements set to the low or high value",
)


def build_corruption(spec: str) -> Corruption:
    """Build a corruption from its spec, e.g. ``build_corruption("mask:rate=0.25")``."""
    return CORRUPTIONS.build(spec)


def normalize_corruption(spec: str) -> str:
    return CORRUPTIONS.normalize(spec)
