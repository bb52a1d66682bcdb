"""Torch-style loss classes: reductions as torch's losses have them, equal to torch where they overlap."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lpae.criteria import (
    BarronLoss,
    CauchyLoss,
    CharbonnierLoss,
    HuberLoss,
    L1L2Loss,
    LogCoshLoss,
    LpLoss,
    LpNormLoss,
)

INPUT = torch.randn(6, 3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
TARGET = torch.randn(6, 3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_equal_to_torch_losses(reduction: str) -> None:
    pairs = [
        (LpLoss(2, reduction=reduction), nn.MSELoss(reduction=reduction)),
        (LpLoss(1, eps=0, reduction=reduction), nn.L1Loss(reduction=reduction)),
        (HuberLoss(0.7, reduction=reduction), nn.HuberLoss(reduction=reduction, delta=0.7)),
    ]
    for ours, theirs in pairs:
        torch.testing.assert_close(ours(INPUT, TARGET), theirs(INPUT, TARGET))


@pytest.mark.parametrize(
    "loss",
    [
        LpLoss(0.5),
        L1L2Loss(0.3),
        CharbonnierLoss(0.01),
        LogCoshLoss(),
        CauchyLoss(2.0),
        BarronLoss(0.5, c=0.4),
    ],
    ids=lambda loss: str(loss.criterion),
)
def test_reductions_are_consistent(loss: nn.Module) -> None:
    elementwise = type(loss)(**loss_kwargs(loss), reduction="none")(INPUT, TARGET)
    assert elementwise.shape == INPUT.shape
    total = type(loss)(**loss_kwargs(loss), reduction="sum")(INPUT, TARGET)
    mean = loss(INPUT, TARGET)
    torch.testing.assert_close(total, elementwise.sum())
    torch.testing.assert_close(mean, elementwise.mean())
    torch.testing.assert_close(loss.criterion(TARGET, INPUT).sum(), total)


def loss_kwargs(loss: nn.Module) -> dict[str, object]:
    values = dict(loss.criterion.spec_values)
    return values


def test_lpnorm_loss_is_per_sample() -> None:
    distances = LpNormLoss(2, eps=0, reduction="none")(INPUT, TARGET)
    torch.testing.assert_close(distances, (INPUT - TARGET).flatten(1).norm(dim=1))
    torch.testing.assert_close(LpNormLoss(2, eps=0)(INPUT, TARGET), distances.mean())
    fractional = LpNormLoss(0.5, eps=0, reduction="sum")(INPUT, TARGET)
    expected = ((INPUT - TARGET).abs().flatten(1) ** 0.5).sum(dim=1) ** 2
    torch.testing.assert_close(fractional, expected.sum())


def test_learned_barron_alpha_is_a_parameter_and_trains() -> None:
    loss = BarronLoss("learned")
    parameters = list(loss.parameters())
    assert len(parameters) == 1
    loss(INPUT.float(), TARGET.float()).backward()
    assert parameters[0].grad is not None and float(parameters[0].grad) > 0  # rho grows with alpha


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="reduction must be one of none, mean, sum"):
        LpLoss(2, reduction="average")
    with pytest.raises(ValueError, match="out of range"):
        LpLoss(-1)
    with pytest.raises(ValueError, match="differs from target shape"):
        LpLoss(2)(INPUT, TARGET[:3])
