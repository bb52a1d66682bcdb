"""Uniform dequantization: training on x + u, u ~ U(-delta/2, delta/2) per element, on quantized data.

A likelihood trained on data that lie on a lattice (lpae.data.quantization) can shrink its
scale onto the lattice points without bound. Adding noise uniform within each value's bin makes
the data continuous; the continuous NLL of the dequantized data bounds the discrete NLL of the
data from above (Jensen: log P(bin) = log int_bin p >= int_bin log p + log delta, Theis, van den
Oord & Bethge 2016), so a scale cannot collapse and the objective stays an honest bound.

The ``dequantize`` training setting (lpae.config): ``off`` (the default) trains on the values as
stored; ``auto`` is ``on`` for likelihood criteria on the real line on data with a quantized
feature, ``off`` otherwise; ``on`` requires quantized data and a criterion on the real line (a
unit-interval family would see values pushed out of (0, 1) by the noise at the lattice's ends).
config.json records the resolved value (``on`` / ``off``; a config.json from before the setting
reads ``off``, what those runs did).

Why ``off`` by default: measured on the quick study (bench/README.md, "quantized data"), ``auto``
made every likelihood criterion on digits worse on every metric, e.g. gaussian:scale=calibrated
RMSE 0.50 -> 0.70, probe accuracy 0.89 -> 0.77, nll_gennorm_bpd 1.98 -> 2.32. After
standardisation a nearly constant pixel's bin is several of its standard deviations wide, so the
noise swamps such features, and the evaluation no longer needs it: the bin likelihoods of
lpae.metrics.discrete cannot be won by a collapsing scale. It stays the option that makes the
training objective itself an upper bound on the discrete NLL.

The noise is drawn afresh for every batch, on the training device, from its own generator seeded
with seed + DEQUANTIZE_SEED_OFFSET (lpae.train), so a run is reproducible and resumes exactly;
continuous features (bin width 0) get none. Validation and evaluation see the data as stored.
The fused trainer does not draw it: runs with dequantization on train alone (lpae.fused.group).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from lpae.config import DEQUANTIZE_MODES
from lpae.criteria import Criterion
from lpae.data import Quantization

DEQUANTIZE_SEED_OFFSET = 3
MODES = DEQUANTIZE_MODES


def resolve(mode: str, criterion: Criterion, quantization: Quantization | None, data: str) -> str:
    """``on`` or ``off`` for a run (module docstring); ValueError for ``on`` where it cannot apply."""
    if mode not in MODES:
        raise ValueError(f"unknown dequantize {mode!r}; allowed: {', '.join(MODES)}")
    quantized = quantization is not None and quantization.any
    if mode == "auto":
        return "on" if quantized and criterion.is_likelihood and criterion.support == "real" else "off"
    if mode == "on" and not quantized:
        raise ValueError(f"dequantize on: data {data!r} has no quantized feature; use auto or off")
    if mode == "on" and criterion.support != "real":
        raise ValueError(
            f"dequantize on: {criterion} lives on (0, 1), where the noise would push values at the "
            "lattice's ends outside it; use auto or off"
        )
    return mode


def bin_widths(quantization: Quantization | None) -> Tensor | None:
    """The bin width of every feature (shape of one sample) as a float32 tensor; None if none."""
    if quantization is None:
        return None
    return torch.from_numpy(np.asarray(quantization.step, dtype=np.float32))


def dequantizer(width: Tensor, generator: torch.Generator) -> Callable[[Tensor], Tensor]:
    """xb -> xb + (U(0, 1) - 1/2) * width, element by element (xb: (B, *shape))."""

    def add_noise(xb: Tensor) -> Tensor:
        u = torch.rand(xb.shape, generator=generator, device=xb.device, dtype=xb.dtype)
        return xb + (u - 0.5) * width.to(device=xb.device, dtype=xb.dtype)

    return add_noise
