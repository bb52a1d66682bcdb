"""Maximum-likelihood scale without a closed form, with exact gradients by implicit differentiation.

For a family whose per-element NLL is rho(r / s) + log s + const, the ML scale of residuals
r_1..r_N solves the score equation, written in t = log s:

    F(t) = mean_i w(v_i) - 1 = 0,    v_i = (r_i / s)^2,    w(v) = u rho'(u) with u = r / s.

- Student-t:  w(v) = (nu + 1) v / (nu + v)                  (bounded by nu + 1)
- Barron:     w(v) = v (v / |alpha - 2| + 1)^(alpha/2 - 1)    (alpha = 2: w = v, the Gaussian)

w is increasing in v, so F decreases in t and its root is unique when it exists; Brent's method
(scipy.optimize.brentq) finds it in float64 without gradients. The gradient comes from one Newton
step taken with autograd at the root,

    t = t* - (F(r, theta, t*) - F(t*)) / F_t(t*)      (the bracket is 0 in value, F_t detached)

whose value is exactly t* and whose derivative is -F_r / F_t and -F_theta / F_t: the implicit
function theorem, so residuals and a learned shape theta get exact gradients through the scale.

When w is bounded (Student-t, Barron at alpha = 0) and too many residuals are exactly 0
(fraction of non-zero residuals times sup w <= 1), the likelihood grows without bound as s -> 0
and there is no root: the ML log-scale is -inf (the criteria's soft floor then holds it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from scipy.optimize import brentq
from torch import Tensor

SEARCH_DEPTH = 40.0  # below e^-40 times the RMS residual, a scale counts as 0


def solve_log_scale(residual: Tensor, weight: Callable[[Tensor], Tensor]) -> Tensor:
    """t* = log of the ML scale of ``residual`` (0-dim), differentiable in the residual and in
    whatever ``weight`` (the family's w(v), a torch function) closes over."""
    squares = residual.detach().to(torch.float64).square().flatten()  # (N,) r^2

    def score(t: float) -> float:
        with torch.no_grad():
            return float(weight(squares * math.exp(-2.0 * t)).mean()) - 1.0

    mean_square = float(squares.mean()) if squares.numel() else 0.0
    if not (mean_square > 0 and math.isfinite(mean_square)):
        return residual.new_tensor(-math.inf if mean_square == 0 else math.nan)
    start = 0.5 * math.log(mean_square)  # the Gaussian ML log-scale: a good first guess
    low = high = start
    step = 1.0
    while score(low) <= 0:
        if low < start - SEARCH_DEPTH:
            return residual.new_tensor(-math.inf)  # no root: s -> 0
        low -= step
        step *= 2
    step = 1.0
    while score(high) > 0:
        high += step
        step *= 2
    root = brentq(score, low, high, xtol=1e-13, rtol=1e-14, maxiter=200)

    t_star = residual.new_tensor(root)
    with torch.enable_grad():
        t_var = t_star.clone().requires_grad_(True)
        value = weight(residual.detach().square() * torch.exp(-2.0 * t_var)).mean()
        (slope,) = torch.autograd.grad(value, t_var)  # F_t(t*) < 0
    score_live = weight(residual.square() * torch.exp(-2.0 * t_star)).mean()
    return t_star - (score_live - score_live.detach()) / slope.detach()
