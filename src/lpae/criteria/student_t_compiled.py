"""T_b = sum_i log1p(r_bi^2 / c) for the Student-t NLL with a shared scale, as two compiled
single-sweep kernels (lpae.criteria.inductor).

With a shared scale s and df nu, the per-sample Student-t NLL (lpae.criteria.student_t) is

    0.5 (nu + 1) T_b + D (log s + K(nu)),    T_b = sum_i log1p(r_bi^2 / c),   c = nu s^2,

since (r / s)^2 / nu = r^2 / c. Only T_b touches every element; its derivatives are

    d T_b / d r_bi = 2 r_bi / (c + r_bi^2),    d T_b / d c = -Q_b / c,   Q_b = sum_i r_bi^2 / (c + r_bi^2),

so the forward kernel returns (T_b, Q_b) in one sweep, the backward kernel gives the (B, D)
gradient in another, and autograd takes c = nu exp(2 log s) and the constants the rest of the
way (learned df and scale included). One log1p per element, read once (see
lpae.criteria.power_compiled on why that matters to inductor).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lpae.criteria.inductor import LazyKernel


def log1p_sums(x: Tensor, x_hat: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """(T_b, Q_b) of the module docstring; x, x_hat (B, D), c 0-dim in their dtype."""
    r = x_hat - x
    square = r * r
    return torch.log1p(square / c).sum(dim=1), (square / (c + square)).sum(dim=1)


def log1p_grad(x: Tensor, x_hat: Tensor, c: Tensor, weights: Tensor) -> Tensor:
    """weights_b 2 r_bi / (c + r_bi^2): (B, D), the gradient of sum_b weights_b T_b in x_hat."""
    r = x_hat - x
    return 2 * r / (c + r * r) * weights[:, None]


FORWARD = LazyKernel("student_t_log1p_sums", log1p_sums)
BACKWARD = LazyKernel("student_t_log1p_grad", log1p_grad)


class CompiledLog1pSum(torch.autograd.Function):
    """T_b for x, x_hat (B, D) and a 0-dim c > 0 (differentiable) through the compiled kernels."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, x_hat: Tensor, c: Tensor) -> Tensor:
        x, x_hat = x.detach().contiguous(), x_hat.detach().contiguous()
        c_value = c.detach().to(x_hat.dtype)
        ctx.c_dtype = c.dtype
        total, fraction_total = FORWARD(x, x_hat, c_value)
        ctx.save_for_backward(x, x_hat, c_value, fraction_total)
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_sums: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, x_hat, c_value, fraction_total = ctx.saved_tensors
        grad_hat = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_hat = BACKWARD(x, x_hat, c_value, grad_sums.to(x_hat.dtype).contiguous())
        grad_x = -grad_hat if ctx.needs_input_grad[0] and grad_hat is not None else None
        grad_c = None
        if ctx.needs_input_grad[2]:
            grad_c = (-(grad_sums * fraction_total).sum() / c_value).to(ctx.c_dtype)
        return grad_x, grad_hat if ctx.needs_input_grad[1] else None, grad_c
