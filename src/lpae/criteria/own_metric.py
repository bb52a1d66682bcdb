"""A criterion's own metric: the energy that a model trained under it should score best on.

REFERENCES.md, "Non-convex losses need continuation": a model trained under a criterion should be
the best, or tied, under that criterion's own energy on held-out data among models trained on the
same data; when it is not, the optimiser failed, not the loss. The own-metric check of a study
(lpae.study.health) scores every model of a comparison on each criterion's own metric, given here
as a criterion spec that is a function of the residuals r = x_hat - x alone, so that any model
can be scored on it:

- a plain loss (lp, lpnorm, huber, l1l2, charbonnier, logcosh, cauchy, barron): the loss itself
  with its parameters, a learned Barron alpha pinned to the trained run's value;
  ``own_metric`` is its mean per element, the per-sample loss over the test rows divided by the
  D elements of a sample;
- a location-scale likelihood (gaussian, laplace, gennorm, student_t, barron_nll): its family's
  NLL at the maximum-likelihood scale of the residuals being scored (``scale=calibrated``, the
  yardstick of lpae.criteria.calibrated: every model at its own best scale, whatever scale the
  trained run had learned or predicted), shapes (gennorm p, Student-t df, Barron alpha) pinned
  to the trained run's learned values; ``own_metric`` is the mean NLL per element in nats,
  with the ML scale over all residuals given and no floor.

None for the rest: the unit-interval likelihoods (cbernoulli, beta) see the decoder's logits
(and a concentration) rather than a point reconstruction, so another model has no value under
them, and the Bernoulli baseline is not a normalised density.

Energies of plain losses are >= 0 and compared relative to each other; NLLs at the ML scale are
compared by differences in nats per element, where a difference d means that one model's
residuals need a scale exp(d) times the other's (lpae.study.health).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from lpae.criteria.base import CRITERIA, build, criterion_class
from lpae.criteria.likelihood import LocationScale

# Spec parameters that may be "learned", with the metrics.json key holding the learned value.
LEARNED_SHAPES = {"p": "learned_p", "df": "learned_df", "alpha": "learned_alpha"}


def own_metric_spec(spec: str, learned: Mapping[str, object] | None = None) -> str | None:
    """The criterion spec a run trained under ``spec`` is judged on (module docstring), with learned
    shapes taken from ``learned`` (its metrics: ``learned_p``, ``learned_df``, ``learned_alpha``).

    None when the criterion has no own metric, or a learned shape has no finite value in ``learned``.
    """
    entry, values = CRITERIA.resolve(spec)
    family = criterion_class(entry.name)
    tags = family.tags(values)
    if tags.improper or tags.support != "real" or (tags.likelihood and not issubclass(family, LocationScale)):
        return None
    pinned = dict(values)
    for name, key in LEARNED_SHAPES.items():
        if pinned.get(name) == "learned":
            value = (learned or {}).get(key)
            if not isinstance(value, int | float) or not math.isfinite(value):
                return None
            pinned[name] = float(value)
    if tags.likelihood:
        pinned["scale"] = "calibrated"
    return CRITERIA.canonical(entry.name, pinned)


@torch.no_grad()
def own_metric(spec: str, residual: Tensor) -> float:
    """Mean per element of the own metric ``spec`` (from own_metric_spec) of residuals (N, ...):
    the loss for a plain loss, the NLL in nats at the residuals' ML scale for a likelihood."""
    residual = residual.detach().to(torch.float64)
    if residual.dim() < 2 or residual.numel() == 0:
        shape = tuple(residual.shape)
        raise ValueError(f"own_metric: expected residuals of shape (N, features, ...), got {shape}")
    criterion = build(spec, feature_shape=tuple(residual.shape[1:]))
    if isinstance(criterion, LocationScale):
        log_scale = criterion.log_ml_scale(residual)
        return float(criterion.element_nll(residual, log_scale).mean())
    if criterion.is_likelihood or criterion.n_outputs != 1:
        raise ValueError(f"own_metric: {spec} is not an own-metric spec (see lpae.criteria.own_metric_spec)")
    per_sample = criterion(torch.zeros_like(residual), residual)  # (N,) loss of x_hat = r against x = 0
    return float(per_sample.mean()) / residual[0].numel()
