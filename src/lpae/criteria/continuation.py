"""Continuation: non-convex criteria start from a convex surrogate and deform into the target.

For 0 < p < 1, sum |r|^p is non-convex with an infinite derivative at r = 0: from a random start,
gradient descent stalls where many residuals are small, and the model stays near the mean (on
digits, latent 8, 30 epochs, ``lp:0.5`` as a plain target ends with a validation RMSE of 0.97 to
1.03 in standardised units, worse than predicting the mean; docs/training.md has the figures).
Non-convex losses are known to need continuation: iteratively reweighted least squares for p < 1
starts with a large smoothing and shrinks it (Chartrand & Yin 2008, ICASSP), graduated
non-convexity starts from a convex surrogate and deforms it toward the target (Blake & Zisserman
1987), and Barron (CVPR 2019) anneals his shape alpha the same way.

lpae uses graduated non-convexity along each family's own shape parameter. At training progress
t in [0, 1] (t = 0 at the first epoch, t = 1 once the schedule is over) the criterion trains on

- ``lp:p`` with p <= 1, ``lpnorm:p`` with p <= 1, ``gennorm:p`` with a fixed p <= 1 and
  ``laplace`` (gennorm's p = 1): exponent p_t = 2 + t (p - 2), from the convex L2 (p = 2) to the
  target (:func:`linear`). p = 1 is convex but not smooth, and starting from L2 is worth it
  there too (on synthetic Gaussian data l1 ended 4% below laplace:scale=calibrated on its own
  metric, mean |r|, while only l1 was continued);
- ``barron:alpha`` and ``barron_nll:alpha`` with alpha < 1 or learned: alpha_t = 2 + t (alpha - 2)
  (a learned alpha enters through the same blend, so it trains from the first step);
- ``cauchy:c``: Barron's rho with alpha_t = 2 - 2t at the same c (Cauchy is Barron's alpha = 0);
- ``student_t:df`` with a fixed df < DF_CONVEX: df_t = DF_CONVEX^(1 - t) df^t, geometric from a
  nearly Gaussian df = 100 down to the target (:func:`geometric`).

Every other criterion (convex ones, and shapes that are learned freely) has no schedule. The
schedule, a training setting (``continuation`` in lpae.config: the fraction of the epochs it
spans, 0 = off), maps a 1-based epoch e of E to t = min(1, (e - 1) / floor(fraction * E)), so the
target criterion is trained on from epoch floor(fraction * E) + 1 on; validation, early stopping,
the choice of the best epoch and every metric always use the target (t = 1).
"""

from __future__ import annotations

import math

from torch import Tensor

CONVEX_P = 2.0  # the exponent of the convex start (L2)
DF_CONVEX = 100.0  # a Student-t with this many degrees of freedom is nearly Gaussian


def linear(start: float, target: float | Tensor, t: float) -> float | Tensor:
    """start + t (target - start); exactly ``target`` at t = 1."""
    return target if t >= 1 else start + t * (target - start)


def geometric(start: float, target: float, t: float) -> float:
    """start^(1 - t) target^t for positive numbers; exactly ``target`` at t = 1."""
    return target if t >= 1 else math.exp((1 - t) * math.log(start) + t * math.log(target))


def progress(epoch: int, epochs: int, fraction: float) -> float:
    """t of a 1-based ``epoch`` of ``epochs`` under a schedule spanning ``fraction`` of them."""
    span = math.floor(fraction * epochs)
    if span <= 0:
        return 1.0
    return min(1.0, (epoch - 1) / span)


def check_progress(t: float) -> float:
    if not (isinstance(t, int | float) and 0 <= t <= 1):
        raise ValueError(f"continuation progress must be a number in [0, 1], got {t!r}")
    return float(t)
