"""Torch-style loss classes for the plain losses, with the usual ``reduction`` argument.

    loss = LpLoss(p=0.5)            # like torch.nn.L1Loss / MSELoss: called as loss(input, target)
    loss(x_hat, x)                  # reduction="mean": the mean of |x_hat - x|^p over every element

``reduction="none"`` gives the element-wise loss (same shape as the input), ``"sum"`` its sum,
``"mean"`` its mean over every element, as torch's losses do; so ``LpLoss(2)`` equals
``torch.nn.MSELoss()`` and ``LpLoss(1, eps=0)`` equals ``torch.nn.L1Loss()``. ``LpNormLoss`` is
a per-sample distance, so its ``"none"`` gives one value per sample (B,) and ``"mean"`` averages
over samples. The arguments are validated exactly as spec strings are (``lpae.criteria.build``).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lpae.criteria.base import ElementwiseLoss, build
from lpae.criteria.lpnorm import LpNorm
from lpae.spec import format_number

REDUCTIONS = ("none", "mean", "sum")


def spec_text(name: str, **values: Any) -> str:
    parts = [
        f"{key}={value if isinstance(value, str) else format_number(value)}" for key, value in values.items()
    ]
    return name + (":" + ",".join(parts) if parts else "")


class CriterionLoss(nn.Module):
    """A plain criterion called as ``loss(input, target)`` with a torch-style ``reduction``."""

    def __init__(self, spec: str, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        self.criterion = build(spec)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        if input.shape != target.shape:
            raise ValueError(
                f"input shape {tuple(input.shape)} differs from target shape {tuple(target.shape)}"
            )
        if isinstance(self.criterion, LpNorm):  # a distance per sample, not an element-wise loss
            distances = self.criterion.distance(input - target)  # (B,)
            return self.reduce(distances, distances.numel())
        if not isinstance(self.criterion, ElementwiseLoss):  # pragma: no cover - constructors only
            raise TypeError(f"{self.criterion} is not a plain element-wise loss")
        if self.reduction == "none":
            return self.criterion.elementwise(input - target)
        rows = (input.shape[0], -1) if input.dim() >= 2 else (-1, 1)  # (B, D) rows for the fused sums
        return self.reduce(self.criterion(target.reshape(rows), input.reshape(rows)), input.numel())

    def reduce(self, values: Tensor, count: int) -> Tensor:
        if self.reduction == "none":
            return values
        total = values.sum()
        return total if self.reduction == "sum" else total / count

    def extra_repr(self) -> str:
        return f"{self.criterion}, reduction={self.reduction!r}"


class LpLoss(CriterionLoss):
    """|input - target|^p (smoothed by eps near 0; eps="auto" as in lp)."""

    def __init__(self, p: float, eps: float | str = "auto", reduction: str = "mean") -> None:
        super().__init__(spec_text("lp", p=p, eps=eps), reduction)


class LpNormLoss(CriterionLoss):
    """Per-sample distance ||input - target||_p, smoothed by eps at 0."""

    def __init__(self, p: float, eps: float = 1e-3, reduction: str = "mean") -> None:
        super().__init__(spec_text("lpnorm", p=p, eps=eps), reduction)


class HuberLoss(CriterionLoss):
    def __init__(self, delta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(spec_text("huber", delta=delta), reduction)


class L1L2Loss(CriterionLoss):
    """w |r| + (1 - w) r^2."""

    def __init__(self, w: float = 0.5, reduction: str = "mean") -> None:
        super().__init__(spec_text("l1l2", w=w), reduction)


class CharbonnierLoss(CriterionLoss):
    def __init__(self, eps: float = 1e-3, reduction: str = "mean") -> None:
        super().__init__(spec_text("charbonnier", eps=eps), reduction)


class LogCoshLoss(CriterionLoss):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__("logcosh", reduction)


class CauchyLoss(CriterionLoss):
    def __init__(self, c: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(spec_text("cauchy", c=c), reduction)


class BarronLoss(CriterionLoss):
    """Barron's rho(r, alpha, c); alpha="learned" makes alpha a parameter of this module."""

    def __init__(self, alpha: float | str, c: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(spec_text("barron", alpha=alpha, c=c), reduction)
