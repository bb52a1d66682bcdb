"""torch.autograd.gradcheck in float64 for every criterion of the contract table.

Gradients with respect to the data x, the decoder output, and every learned parameter (shapes,
scales) are checked against finite differences; calibrated scales included, whose gradient flows
through the closed form or, for Student-t and Barron, through the implicit function theorem.
Residuals are kept away from 0, where |r|^p is not differentiable for p <= 1.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from lpae import criteria
from test_criteria_contract import ALL_SPECS

FEATURES = (2, 3)


def inputs(crit: criteria.Criterion) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    shape = (3, *FEATURES)
    if crit.support == "unit":
        x = 0.1 + 0.8 * torch.rand(shape, generator=generator, dtype=torch.float64)
        location = 2 * torch.randn(shape, generator=generator, dtype=torch.float64)  # logits
    else:
        x = torch.randn(shape, generator=generator, dtype=torch.float64)
        size = 0.3 + torch.rand(shape, generator=generator, dtype=torch.float64)
        sign = torch.randint(0, 2, shape, generator=generator).to(torch.float64) * 2 - 1
        location = x + size * sign
    if crit.n_outputs == 2:
        raw = 0.5 * torch.randn(shape, generator=generator, dtype=torch.float64)
        return x, torch.cat([location, raw], dim=1)
    return x, location


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_gradcheck_float64(spec: str) -> None:
    crit = criteria.build(spec, feature_shape=FEATURES).double()
    x, out = inputs(crit)
    names = [name for name, _ in crit.named_parameters()]
    values = [p.detach().clone().requires_grad_(True) for _, p in crit.named_parameters()]
    if "learned" in spec or spec in ("gaussian", "laplace", "gennorm", "student_t", "barron_nll", "beta"):
        assert values, f"{spec} should have learned parameters"

    def objective(x: torch.Tensor, out: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = functional_call(crit, dict(zip(names, params, strict=True)), (x, out))
        return result

    x.requires_grad_(True)
    out.requires_grad_(True)
    assert torch.autograd.gradcheck(objective, (x, out, *values), atol=1e-6, rtol=1e-5)
