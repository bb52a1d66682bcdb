"""Training health of one run, read from its validation-loss history: under-trained, unstable.

With v_1 .. v_n the validation loss after each of the n recorded epochs (history.csv's
``val_loss``, always under the run's target criterion), b_e = min(v_1 .. v_e) the best so far,
and R = max(v) - min(v) the whole range the validation loss covered:

- the tail is the last T = ceil(TAIL_FRACTION n) epochs (TAIL_FRACTION = 0.2), starting after
  epoch k = n - T;
- ``val_tail_fall`` = (b_k - b_n) / R: how much the best validation loss still fell during the
  tail, as a fraction of the range. ``under_trained`` when it exceeds UNDER_TRAINED_FALL = 0.10:
  a run whose last fifth of training still brought more than a tenth of its whole fall had not
  converged, so it is judged on its step budget, not on its loss. (For scale: a curve
  a + b / sqrt(e) over 25 epochs gives 0.03, a + b exp(-e / tau) after 2.3 time constants 0.10,
  a straight line 0.2.)
- ``val_end_rise`` = (v_n - b_n) / R: how far the last validation loss ended above the best one.
  ``unstable`` when it exceeds UNSTABLE_RISE = 0.10: training moved away from its best point
  (too large a learning rate, an oscillating or collapsing objective). The kept weights are
  the best epoch's (lpae.train), so the run's metrics are not those of the last epoch, but
  its optimiser was not settling.

Only the end of training is read, and only falls relative to R, never ratios of loss values:
validation losses of likelihoods may be negative, and a continuation schedule (a convex
surrogate early in training, the target criterion later) makes the early validation loss fall
fast. The best-so-far curve b keeps noise in a flat tail from counting as a fall. Both fractions
are 0 when the validation loss never moved (R = 0). With fewer than MIN_EPOCHS = 2 recorded
epochs there is nothing to compare and no key is given.

lpae.experiment.write_trained_run adds these keys to metrics.json for every finished run (solo
or fused); the study collects them with the own-metric check (lpae.study.health).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lpae.metrics.registry import Metric, declare

TAIL_FRACTION = 0.2
UNDER_TRAINED_FALL = 0.10
UNSTABLE_RISE = 0.10
MIN_EPOCHS = 2

declare(
    Metric("val_tail_fall", "fall of the best validation loss in the last 20% of epochs, share of its range"),
    Metric("val_end_rise", "final validation loss above its minimum, fraction of its range"),
    Metric("under_trained", "validation loss still falling at the end of training"),
    Metric("unstable", "validation loss ended well above its minimum"),
)


def history_health(val_loss: Sequence[float] | np.ndarray) -> dict[str, float | bool]:
    """val_tail_fall, val_end_rise, under_trained and unstable of a validation-loss curve
    (module docstring); {} for fewer than MIN_EPOCHS values or a non-finite one."""
    v = np.asarray(val_loss, dtype=np.float64)
    n = len(v)
    if n < MIN_EPOCHS or not bool(np.isfinite(v).all()):
        return {}
    best = np.minimum.accumulate(v)  # (n,) best so far
    spread = float(v.max() - v.min())
    tail = max(1, math.ceil(TAIL_FRACTION * n))
    fall = float(best[n - tail - 1] - best[-1]) / spread if spread > 0 else 0.0  # tail < n for n >= 2
    rise = float(v[-1] - best[-1]) / spread if spread > 0 else 0.0
    return {
        "val_tail_fall": fall,
        "val_end_rise": rise,
        "under_trained": fall > UNDER_TRAINED_FALL,
        "unstable": rise > UNSTABLE_RISE,
    }
