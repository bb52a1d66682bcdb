"""Per-sample sums of powers of residuals, S_b = sum_i rho_{p,eps}(r_bi), value and gradient fused.

    rho_{p,0}(r)   = |r|^p
    rho_{p,eps}(r) = (r^2 + eps^2)^(p/2) - eps^p            (eps > 0: finite gradient at r = 0)

    d rho / d r = p r (r^2 + eps^2)^(p/2 - 1)  = p * r * t / s   with s = r^2 + eps^2, t = s^(p/2)
    d rho / d p = t log(s) / 2 - eps^p log(eps)               (|r|^p log|r| when eps = 0)

This is the inner loop of every L_p loss and of the Gaussian, Laplace and generalized-normal
likelihoods with a shared scale (their NLL is S_b / alpha^p plus constants), so it is written
as a ``torch.autograd.Function`` instead of an autograd chain:

- the value and the derivative factor come from one power (``t``), never a second ``pow``;
- ``pow`` with a general exponent is several times slower than ``exp(p * log s)`` on CPU, and
  ``sqrt`` beats both, so p = 2, 1, 0.5 and 1.5 get sqrt-based forms;
- rows are processed in blocks of up to 8M elements into reused buffers, which bounds the memory
  of the temporaries; blocks stay large because every operation on a block is a parallel
  region whose fixed cost grows sharply when other processes compete for the cores (measured:
  cache-sized blocks of 256k elements were at best 15-30 % faster on a quiet machine and 2.5x
  slower on a loaded one, bench/README.md);
- the derivative factor is saved in the forward pass, so the backward pass is one multiply.

On CPU, for p in {0.5, 1, 1.5, 2} and given x and x_hat, compiled single-pass kernels
(lpae.criteria.power_numba) do the whole forward and backward pass instead, at about the cost
of ``mse_loss``. For a learned p, once lpae.criteria.inductor decides to compile (by default:
large CPU batches in a long run), lpae.criteria.power_compiled does each pass in one vectorised
sweep. With ``compiled=False`` everything takes the torch path.

At r = 0 with eps = 0 the gradient is taken as 0 (the subgradient torch uses for |r|); for
p < 1 the true derivative there is infinite. The derivative with respect to a learned p is
exact, with 0 * log 0 = 0.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lpae.criteria import power_compiled, power_numba
from lpae.numba_threads import torch_threads

BLOCK_ELEMENTS = 1 << 23


def power_sum(
    x: Tensor | None, x_hat: Tensor, p: float | Tensor, eps: float = 0.0, *, compiled: bool = True
) -> Tensor:
    """sum over features of rho_{p,eps}(x_hat - x): (B, ...) -> (B,); x = None means x_hat is the residual.

    ``p`` is a number, or a 0-dim tensor when it is learned (then eps must be 0). ``compiled``:
    use the numba kernels, or for a learned p the inductor kernels (lpae.criteria.power_compiled,
    when lpae.criteria.inductor says so), where they apply; False forces the torch path.
    """
    flat_hat = x_hat.reshape(x_hat.shape[0], -1)  # (B, D)
    flat_x = None
    if x is not None:
        if x.shape != x_hat.shape:
            raise ValueError(f"power_sum: x has shape {tuple(x.shape)} but x_hat has {tuple(x_hat.shape)}")
        flat_x = x.reshape(x.shape[0], -1)
    if isinstance(p, Tensor):
        if p.dim() != 0:
            raise ValueError(f"power_sum: p must be a number or a 0-dim tensor, got shape {tuple(p.shape)}")
        if eps != 0:
            raise ValueError("power_sum: a tensor-valued (learned) p needs eps = 0")
        if compiled and flat_x is not None and power_compiled.FORWARD.wanted(flat_hat):
            result: Tensor = power_compiled.CompiledLearnedPowerSum.apply(flat_x, flat_hat, p)
            return result
        result = LearnedPowerSum.apply(flat_x, flat_hat, p)
        return result
    if not (p > 0 and eps >= 0):
        raise ValueError(f"power_sum: need p > 0 and eps >= 0, got p={p}, eps={eps}")
    op = compiled_op(flat_x, flat_hat, float(p), float(eps)) if compiled else None
    if op is not None and flat_x is not None:
        result = CompiledPowerSum.apply(flat_x, flat_hat, op, float(eps))
        return result
    result = FixedPowerSum.apply(flat_x, flat_hat, float(p), float(eps))
    return result


def compiled_op(x: Tensor | None, x_hat: Tensor, p: float, eps: float) -> int | None:
    """The compiled kernel's op code when it applies (CPU, float32/64, x given, p in 0.5, 1, 1.5, 2)."""
    if x is None:
        return None
    if x_hat.device.type != "cpu" or x.device.type != "cpu" or x.dtype != x_hat.dtype:
        return None
    if x_hat.dtype not in (torch.float32, torch.float64):
        return None
    return power_numba.op_for(p, eps)


def block_rows(flat: Tensor) -> int:
    """Rows per block: about BLOCK_ELEMENTS elements on CPU; everything at once on other devices."""
    n_rows, n_features = flat.shape
    if flat.device.type != "cpu":
        return max(n_rows, 1)
    return min(max(1, BLOCK_ELEMENTS // max(n_features, 1)), max(n_rows, 1))


def residual_block(x: Tensor | None, x_hat: Tensor, start: int, stop: int, buffer: Tensor) -> Tensor:
    """x_hat - x for rows start:stop, into a reused buffer (no full-size residual is ever stored)."""
    if x is None:
        return x_hat[start:stop]
    return torch.sub(x_hat[start:stop], x[start:stop], out=buffer[: stop - start])


def fixed_block(r: Tensor, p: float, eps: float, t: Tensor, grad: Tensor, sums: Tensor) -> None:
    """One block of rows: ``sums`` gets sum_i (rho + eps^p), ``grad`` gets (d rho / d r) / p.

    ``t`` is scratch of the block's shape; ``grad`` doubles as scratch until it is written.
    """
    if p == 2:  # (r^2 + eps^2) - eps^2 = r^2 exactly, whatever eps
        torch.mul(r, r, out=t)
        torch.sum(t, dim=1, out=sums)
        grad.copy_(r)
        return
    if eps == 0 and p == 1:
        torch.abs(r, out=t)
        torch.sum(t, dim=1, out=sums)
        torch.sign(r, out=grad)
        return
    if eps == 0:
        torch.abs(r, out=grad)
        if p == 0.5:
            torch.sqrt(grad, out=t)
        elif p == 1.5:
            torch.sqrt(grad, out=t)
            t.mul_(grad)
        else:
            torch.log(grad, out=t)
            t.mul_(p).exp_()  # |r|^p
        torch.sum(t, dim=1, out=sums)
        torch.div(t, r, out=grad)  # |r|^(p-1) sign(r), but 0/0 at r = 0
        grad.nan_to_num_(nan=0.0, posinf=math.inf, neginf=-math.inf)
        return
    s = grad
    torch.addcmul(torch.full((), eps * eps, dtype=r.dtype, device=r.device), r, r, out=s)  # r^2 + eps^2
    if p == 1:
        torch.sqrt(s, out=t)
        torch.sum(t, dim=1, out=sums)
        torch.div(r, t, out=grad)  # r / s^(1/2)
    elif p == 0.5:
        torch.sqrt(s, out=t)  # s^(1/2)
        torch.sqrt(t, out=s)  # s^(1/4), the value
        torch.sum(s, dim=1, out=sums)
        t.mul_(s)  # s^(3/4)
        torch.div(r, t, out=grad)  # r / s^(3/4)
    else:
        torch.log(s, out=t)
        t.mul_(p / 2).exp_()  # s^(p/2)
        torch.sum(t, dim=1, out=sums)
        torch.div(t, s, out=grad).mul_(r)  # r s^(p/2) / s


class FixedPowerSum(torch.autograd.Function):
    """S_b = sum_i rho_{p,eps}(x_hat - x) for a fixed number p; saves d rho / d r for the backward pass."""

    @staticmethod
    def forward(ctx: Any, x: Tensor | None, x_hat: Tensor, p: float, eps: float) -> Tensor:
        n_rows, n_features = x_hat.shape
        rows = block_rows(x_hat)
        grad = torch.empty_like(x_hat)  # (B, D) (d rho / d r) / p, saved
        r_buffer = torch.empty((rows, n_features), dtype=x_hat.dtype, device=x_hat.device)  # reused
        scratch = torch.empty_like(r_buffer)
        sums = x_hat.new_empty(n_rows)
        for start in range(0, n_rows, rows):
            stop = min(start + rows, n_rows)
            r = residual_block(x, x_hat, start, stop, r_buffer)
            fixed_block(r, p, eps, scratch[: stop - start], grad[start:stop], sums[start:stop])
        if eps > 0 and p != 2:
            # subtract sum_i eps^p computed exactly as the rows were, so a perfect reconstruction
            # gives exactly 0 (a float sum of D equal values is not D times the value)
            zero = x_hat.new_zeros((1, n_features))
            offset = x_hat.new_empty(1)
            fixed_block(zero, p, eps, torch.empty_like(zero), torch.empty_like(zero), offset)
            sums.sub_(offset)
        ctx.factor = p
        ctx.save_for_backward(grad)
        return sums

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_sums: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        (grad,) = ctx.saved_tensors
        grad_hat = grad * (grad_sums * ctx.factor)[:, None]
        grad_x = -grad_hat if ctx.needs_input_grad[0] else None
        return grad_x, grad_hat if ctx.needs_input_grad[1] else None, None, None


class CompiledPowerSum(torch.autograd.Function):
    """The compiled kernels of lpae.criteria.power_numba: one pass forward, one pass backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, x_hat: Tensor, op: int, eps: float) -> Tensor:
        x, x_hat = x.detach().contiguous(), x_hat.detach().contiguous()
        sums = x_hat.new_empty(x_hat.shape[0])
        ctx.op, ctx.consts = op, power_numba.constants(eps, x_hat.numpy().dtype)
        with torch_threads():
            power_numba.forward_sums(x.numpy(), x_hat.numpy(), op, ctx.consts, sums.numpy())
        ctx.save_for_backward(x, x_hat)
        return sums

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_sums: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        x, x_hat = ctx.saved_tensors
        grad = torch.empty_like(x_hat)
        weights = grad_sums.to(x_hat.dtype).contiguous()
        with torch_threads():
            power_numba.backward_grad(
                x.numpy(), x_hat.numpy(), ctx.op, ctx.consts, weights.numpy(), grad.numpy()
            )
        grad_x = -grad if ctx.needs_input_grad[0] else None
        return grad_x, grad if ctx.needs_input_grad[1] else None, None, None


class LearnedPowerSum(torch.autograd.Function):
    """S_b = sum_i |r_bi|^p for a learned 0-dim tensor p; also keeps sum_i |r|^p log|r| for d/dp."""

    @staticmethod
    def forward(ctx: Any, x: Tensor | None, x_hat: Tensor, p: Tensor) -> Tensor:
        n_rows, n_features = x_hat.shape
        rows = block_rows(x_hat)
        power = p.detach().to(x_hat.dtype)
        ctx.p_dtype = p.dtype
        grad = torch.empty_like(x_hat)  # (B, D) |r|^p / r, saved; p is applied in backward
        r_buffer = torch.empty((rows, n_features), dtype=x_hat.dtype, device=x_hat.device)
        log_abs = torch.empty_like(r_buffer)
        t = torch.empty_like(r_buffer)
        sums = x_hat.new_empty(n_rows)
        log_sums = x_hat.new_empty(n_rows)  # sum_i |r|^p log|r|
        for start in range(0, n_rows, rows):
            stop = min(start + rows, n_rows)
            r = residual_block(x, x_hat, start, stop, r_buffer)
            lg, tb = log_abs[: stop - start], t[: stop - start]
            torch.abs(r, out=lg)
            lg.log_()
            torch.mul(lg, power, out=tb)
            tb.exp_()  # |r|^p
            torch.sum(tb, dim=1, out=sums[start:stop])
            torch.div(tb, r, out=grad[start:stop])
            lg.mul_(tb)
            torch.sum(lg, dim=1, out=log_sums[start:stop])
        zero_rows = torch.isnan(log_sums)  # 0 * log 0 = nan where r = 0: rare, fixed row by row
        if bool(zero_rows.any()):
            for row in zero_rows.nonzero().flatten().tolist():
                r_abs = (x_hat[row] if x is None else x_hat[row] - x[row]).abs()
                log_sums[row] = torch.xlogy(r_abs.pow(power), r_abs).sum()
                grad[row].nan_to_num_(nan=0.0, posinf=math.inf, neginf=-math.inf)
        ctx.save_for_backward(grad, log_sums, power)
        return sums

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_sums: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        grad, log_sums, power = ctx.saved_tensors
        grad_hat = grad * (grad_sums * power)[:, None]
        grad_x = -grad_hat if ctx.needs_input_grad[0] else None
        grad_p = (grad_sums * log_sums).sum().to(ctx.p_dtype) if ctx.needs_input_grad[2] else None
        return grad_x, grad_hat if ctx.needs_input_grad[1] else None, grad_p
