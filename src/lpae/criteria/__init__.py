"""Reconstruction criteria: plain L_p-family losses and decoder likelihoods.

``build(spec)`` makes a criterion from its spec string; ``available()`` lists the names;
``describe(spec)`` answers the tags each family declares once, on its class (likelihood,
support, robust, energy: lpae.criteria.base), for whoever needs a fact about a criterion.
Each family lives in its own module and registers itself on import, in the order that
``lpae losses`` lists them. ``calibrated_nll`` scores the residuals of any model under a
likelihood family at its maximum-likelihood scale (and shape): the common yardstick for models
trained with different losses. ``own_metric_spec`` and ``own_metric`` give the energy that a
model trained under a criterion should score best on (the own-metric check, lpae.study.health).
The torch-style classes (``LpLoss``, ``HuberLoss``, ...) wrap the plain losses with a
``reduction`` argument for use in anyone's PyTorch code.
"""

# isort: off
# Registration order is listing order: plain losses, then likelihoods on the real line, then (0, 1).
from lpae.criteria import lp, lpnorm, robust, barron  # noqa: F401
from lpae.criteria import gaussian, laplace, gennorm, student_t, barron_nll, unit  # noqa: F401

# isort: on
from lpae.criteria.base import (
    CRITERIA,
    Criterion,
    CriterionTags,
    available,
    build,
    criterion_class,
    describe,
    normalize,
    per_sample,
)
from lpae.criteria.calibrated import CalibratedNLL, calibrated_nll
from lpae.criteria.own_metric import own_metric, own_metric_spec
from lpae.criteria.torch_losses import (
    BarronLoss,
    CauchyLoss,
    CharbonnierLoss,
    HuberLoss,
    L1L2Loss,
    LogCoshLoss,
    LpLoss,
    LpNormLoss,
)

__all__ = [
    "CRITERIA",
    "BarronLoss",
    "CauchyLoss",
    "CharbonnierLoss",
    "HuberLoss",
    "L1L2Loss",
    "LogCoshLoss",
    "LpLoss",
    "LpNormLoss",
    "CalibratedNLL",
    "Criterion",
    "CriterionTags",
    "available",
    "build",
    "calibrated_nll",
    "criterion_class",
    "describe",
    "normalize",
    "own_metric",
    "own_metric_spec",
    "per_sample",
]
