"""Robust plain losses rho(r) of the residual r = x_hat - x, summed over features (not normalised).

- ``huber:delta=D``: 0.5 r^2 for |r| <= D, D (|r| - 0.5 D) beyond (torch's huber_loss);
  quadratic near the optimum, linear (L1-like) in the tails. Default D = 1.
- ``l1l2:w=W``: W |r| + (1 - W) r^2, the mix that keeps a constant-size gradient near the
  optimum (from the L1 part) and a smooth bowl (from the L2 part). Default W = 0.5.
- ``charbonnier:eps=E``: sqrt(r^2 + E^2) - E, a smooth L1 (= lp:p=1,eps=E; Barron's alpha = 1
  up to the scale). Default E = 1e-3.
- ``logcosh``: log cosh r, computed as |r| + log1p(exp(-2|r|)) - log 2 so it never overflows;
  about r^2 / 2 near 0 and |r| - log 2 far away.

``cauchy`` (Barron's alpha = 0) lives beside Barron's loss, in lpae.criteria.barron.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lpae.criteria.base import CRITERIA, ElementwiseLoss
from lpae.spec import Number, Param


class Huber(ElementwiseLoss):
    name = "huber"
    robust = True

    def __init__(self, delta: float = 1.0, feature_shape: Sequence[int] | None = None, **_: Any) -> None:
        super().__init__(delta=delta)
        self.delta = float(delta)

    def elementwise(self, residual: Tensor) -> Tensor:
        return F.huber_loss(residual, torch.zeros_like(residual), reduction="none", delta=self.delta)


class L1L2(ElementwiseLoss):
    name = "l1l2"
    robust = True

    def __init__(self, w: float = 0.5, feature_shape: Sequence[int] | None = None, **_: Any) -> None:
        super().__init__(w=w)
        self.w = float(w)

    def elementwise(self, residual: Tensor) -> Tensor:
        return self.w * residual.abs() + (1.0 - self.w) * residual.square()


class Charbonnier(ElementwiseLoss):
    name = "charbonnier"

    def __init__(self, eps: float = 1e-3, feature_shape: Sequence[int] | None = None, **_: Any) -> None:
        super().__init__(eps=eps)
        self.eps = float(eps)

    def elementwise(self, residual: Tensor) -> Tensor:
        return torch.sqrt(residual.square() + self.eps**2) - self.eps


class LogCosh(ElementwiseLoss):
    name = "logcosh"

    def __init__(self, feature_shape: Sequence[int] | None = None, **_: Any) -> None:
        super().__init__()

    def elementwise(self, residual: Tensor) -> Tensor:
        size = residual.abs()
        return size + torch.log1p(torch.exp(-2.0 * size)) - math.log(2.0)


CRITERIA.register(
    "huber",
    Huber,
    [Param("delta", Number(low=0, float32=True), 1.0, help="where the quadratic part turns linear")],
    summary="Huber: 0.5 r^2 inside |r| <= delta, linear outside",
)
CRITERIA.register(
    "l1l2",
    L1L2,
    [Param("w", Number(low=0, high=1, low_open=False, high_open=False), 0.5, help="weight of L1")],
    summary="w |r| + (1 - w) r^2",
)
CRITERIA.register(
    "charbonnier",
    Charbonnier,
    [Param("eps", Number(low=0, float32=True), 1e-3, help="smoothing width")],
    summary="Charbonnier sqrt(r^2 + eps^2) - eps, a smooth L1",
)
CRITERIA.register(
    "logcosh",
    LogCosh,
    [],
    summary="log cosh r: quadratic near 0, linear in the tails",
)
