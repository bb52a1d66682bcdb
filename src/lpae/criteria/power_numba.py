"""Compiled single-pass kernels for the L_p sums with p in {0.5, 1, 1.5, 2} (numba, CPU).

The same sums as lpae.criteria.power (S_b = sum_i rho_{p,eps}(x_hat_bi - x_bi)), but each pass
reads x and x_hat once and does everything else in registers:

- forward: S_b, accumulated in float64, each term with its eps^p offset already subtracted (so a
  perfect reconstruction gives exactly 0);
- backward: grad_bi = w_b * d rho / d r, recomputed from x and x_hat instead of saved, so the
  memory traffic is that of ``mse_loss`` (forward reads two arrays; backward reads two and
  writes one).

For these p every term is sqrt, abs or a product, which vectorise (no fastmath is needed for
them; only the row sums are allowed to be reassociated). Other p need exp and log, which numba
does not vectorise here, so they stay on the torch path, as do learned p and non-CPU tensors.
With eps = 0 the derivative at r = 0 is taken as 0, as on the torch path.

Rows run in parallel (numba prange) on as many threads as torch uses (lpae.numba_threads).
Compiled on first use and cached on disk (numba ``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# op codes: the exact form of rho for (p, eps)
SQUARE, ABS, SQRT_ABS, ABS_SQRT_ABS, SMOOTH_ONE, SMOOTH_HALF, SMOOTH_ONE_HALF = range(7)
FASTMATH = {"reassoc", "nsz", "contract"}  # reassociated sums; no assumption about nan or inf


def constants(eps: float, dtype: np.dtype) -> np.ndarray:
    """[eps^2, 0, 0.5, 1.5, 2] in the data's dtype, so the kernels never widen float32 to float64."""
    return np.array([eps * eps, 0.0, 0.5, 1.5, 2.0], dtype=dtype)


def op_for(p: float, eps: float) -> int | None:
    """The op code for (p, eps), or None when this kernel does not cover it."""
    if p == 2:
        return SQUARE
    if eps == 0:
        return {1.0: ABS, 0.5: SQRT_ABS, 1.5: ABS_SQRT_ABS}.get(p)
    return {1.0: SMOOTH_ONE, 0.5: SMOOTH_HALF, 1.5: SMOOTH_ONE_HALF}.get(p)


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def forward_sums(x, x_hat, op, consts, sums):  # pragma: no cover - compiled
    """sums[b] = sum_i rho(x_hat[b, i] - x[b, i]) for the op's rho; x, x_hat (B, D) C-contiguous."""
    n_rows, n_features = x.shape
    e2 = consts[0]
    at_zero_half = np.sqrt(np.sqrt(e2))  # eps^p exactly as the terms compute it at r = 0
    at_zero_one = np.sqrt(e2)
    for b in prange(n_rows):
        acc = 0.0
        if op == SQUARE:
            for i in range(n_features):
                r = x_hat[b, i] - x[b, i]
                acc += r * r
        elif op == ABS:
            for i in range(n_features):
                acc += np.abs(x_hat[b, i] - x[b, i])
        elif op == SQRT_ABS:
            for i in range(n_features):
                acc += np.sqrt(np.abs(x_hat[b, i] - x[b, i]))
        elif op == ABS_SQRT_ABS:
            for i in range(n_features):
                a = np.abs(x_hat[b, i] - x[b, i])
                acc += a * np.sqrt(a)
        elif op == SMOOTH_ONE:
            for i in range(n_features):
                r = x_hat[b, i] - x[b, i]
                acc += np.sqrt(r * r + e2) - at_zero_one
        elif op == SMOOTH_HALF:
            for i in range(n_features):
                r = x_hat[b, i] - x[b, i]
                acc += np.sqrt(np.sqrt(r * r + e2)) - at_zero_half
        else:  # SMOOTH_ONE_HALF
            for i in range(n_features):
                r = x_hat[b, i] - x[b, i]
                q = np.sqrt(r * r + e2)
                acc += q * np.sqrt(q) - at_zero_one * at_zero_half
        sums[b] = acc


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def backward_grad(x, x_hat, op, consts, weights, grad):  # pragma: no cover - compiled
    """grad[b, i] = weights[b] * d rho / d r at r = x_hat[b, i] - x[b, i]; weights (B,) in x's dtype."""
    n_rows, n_features = x.shape
    e2, zero, half, one_half, two = consts[0], consts[1], consts[2], consts[3], consts[4]
    for b in prange(n_rows):
        w = weights[b]
        if op == SQUARE:
            for i in range(n_features):
                grad[b, i] = two * w * (x_hat[b, i] - x[b, i])
        elif op == ABS:
            for i in range(n_features):
                grad[b, i] = w * np.sign(x_hat[b, i] - x[b, i])
        elif op == SQRT_ABS:
            for i in range(n_features):
                r = x_hat[b, i] - x[b, i]
                grad[b, i] = half * w * np.sqrt(np.abs(r)) / r if r != zero else zero
        elif op == ABS_SQRT_ABS:
            for i in range(n_features):
                r = x_hat[b, i] - x[b, i]
                grad[b, i] = one_half * w * np.sign(r) * np.sqrt(np.abs(r))
        elif op == SMOOTH_ONE:
            for i in range(n_features):
                r = x_hat[b, i] - x[b, i]
                grad[b, i] = w * r / np.sqrt(r * r + e2)
        elif op == SMOOTH_HALF:
            for i in range(n_features):
                r = x_hat[b, i] - x[b, i]
                q = np.sqrt(r * r + e2)
                grad[b, i] = half * w * r / (q * np.sqrt(q))
        else:  # SMOOTH_ONE_HALF
            for i in range(n_features):
                r = x_hat[b, i] - x[b, i]
                q = np.sqrt(r * r + e2)
                grad[b, i] = one_half * w * r / np.sqrt(q)
