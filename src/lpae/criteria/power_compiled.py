"""S_b = sum_i |r_bi|^p for a learned p, as two compiled single-sweep kernels (lpae.criteria.inductor).

    forward:  S_b = sum_i exp(p log|r_bi|),  L_b = sum_i |r_bi|^p log|r_bi|       (0 log 0 = 0)
    backward: d S_b / d x_hat_bi = p |r_bi|^p / r_bi  (0 at r = 0),   d S_b / d p = L_b

the same formulas as the eager lpae.criteria.power.LearnedPowerSum (so the values agree to
float rounding), but each pass reads x and x_hat once and writes only its result: log|r| is
computed once per element and reused for |r|^p and for |r|^p log|r|; the backward pass
recomputes |r|^p instead of keeping a (B, D) tensor from the forward pass.

Inductor keeps a value that several expressions read in a buffer of its own when it contains
exp or log (a heuristic for CPU, torch._inductor.ir.StorageBox.should_realize_on_reuse), which
would cost a write and a read of (B, D) per reuse. So every exp and log below is written once
per use, each with one reader; inductor's code generation merges the identical expressions of
one loop, and the generated kernel computes one log and one exp per element.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lpae.criteria.inductor import LazyKernel


def learned_power_sums(x: Tensor, x_hat: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    """(S_b, L_b) of the module docstring; x, x_hat (B, D), p 0-dim in their dtype."""
    total = torch.exp(torch.log((x_hat - x).abs()) * p).sum(dim=1)
    r_abs = (x_hat - x).abs()
    weighted = torch.exp(torch.log(r_abs) * p) * torch.log(r_abs)  # |r|^p log|r|, nan at r = 0
    log_total = torch.where(r_abs == 0, 0.0, weighted).sum(dim=1)
    return total, log_total


def learned_power_grad(x: Tensor, x_hat: Tensor, p: Tensor, weights: Tensor) -> Tensor:
    """weights_b p |r_bi|^p / r_bi (0 at r = 0): (B, D), the gradient of sum_b weights_b S_b in x_hat."""
    r = x_hat - x
    factor = torch.exp(torch.log(r.abs()) * p) / r  # |r|^p / r, nan at r = 0
    return torch.where(r == 0, 0.0, factor) * (weights * p)[:, None]


FORWARD = LazyKernel("learned_power_sums", learned_power_sums)
BACKWARD = LazyKernel("learned_power_grad", learned_power_grad)


class CompiledLearnedPowerSum(torch.autograd.Function):
    """S_b for x, x_hat (B, D) and a learned 0-dim p through the compiled kernels."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, x_hat: Tensor, p: Tensor) -> Tensor:
        x, x_hat = x.detach().contiguous(), x_hat.detach().contiguous()
        power = p.detach().to(x_hat.dtype)
        ctx.p_dtype = p.dtype
        total, log_total = FORWARD(x, x_hat, power)
        ctx.save_for_backward(x, x_hat, power, log_total)
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_sums: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, x_hat, power, log_total = ctx.saved_tensors
        grad_hat = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_hat = BACKWARD(x, x_hat, power, grad_sums.to(x_hat.dtype).contiguous())
        grad_x = -grad_hat if ctx.needs_input_grad[0] and grad_hat is not None else None
        grad_p = (grad_sums * log_total).sum().to(ctx.p_dtype) if ctx.needs_input_grad[2] else None
        return grad_x, grad_hat if ctx.needs_input_grad[1] else None, grad_p
