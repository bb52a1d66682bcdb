"""The Criterion contract and the registry every criterion family registers into.

A criterion turns (x, decoder output) into a per-sample loss. It is an ``nn.Module`` so that
learned scale or shape parameters train with the model (../shared/DESIGN.md).

- ``n_outputs``: decoder channels per input feature (1 = location; 2 = location and scale).
  With ``n_outputs = k > 1`` the decoder output holds the k channels stacked along dim 1:
  ``out`` has shape (B, k * C, ...) for x of shape (B, C, ...), split with ``out.chunk(k, 1)``.
- ``forward(x, out) -> (B,)``: the objective per sample, summed over every non-batch dim.
  For likelihoods this is the NLL in nats including normalising constants.
- ``reconstruct(out)``: the point reconstruction (the mean where the family has one).
- ``is_likelihood``: True when ``forward`` is a normalised NLL.
- ``support``: "real" or "unit" (the open interval (0, 1)); preprocessing follows it.
- ``calibrate(residual)``: closed-form maximum-likelihood scale given residuals.
- ``str(criterion)`` is its canonical spec; ``build(str(c))`` gives an equal criterion.
- ``learned()``: learned parameters for metrics.json, keys ``learned_p``, ``learned_df``,
  ``learned_alpha``, ``learned_scale`` (means over features) where the criterion has them.

Tags, declared once per family as class attributes (``describe(spec)`` answers them for a spec;
a family whose tags depend on its spec values overrides the classmethod ``tags``):

- ``is_likelihood``, ``support`` as above; ``improper``: a likelihood's form that is not
  normalised on continuous data (the Bernoulli baseline), listed as such.
- ``robust``: a heavy-tail-robust criterion, the family the study verdict expects to win on
  heavy-tailed noise: lp with p <= 1, huber, l1l2, laplace, student_t, barron, cauchy, gennorm.
- ``energy``: the exponent q when the criterion sees the residual through |r|^q, so that its
  own reconstruction error is the power mean of order q (``recon_l{q}``): lp:q and gaussian
  (q = 2), laplace (q = 1), gennorm with a fixed p minimise the sum of |r|^q at a fixed scale,
  lpnorm:q its per-sample root. None for the others. The verdict's L2 family is the criteria
  with q = 2 that are not robust.

Factories are called as ``factory(**spec_values, feature_shape=shape)``: ``feature_shape`` (the
shape of one sample, or None when unknown) sizes per-feature parameters; families without such
parameters ignore it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from lpae.criteria.continuation import check_progress
from lpae.spec import Registry

CRITERIA: Registry[Criterion] = Registry("criterion")


def per_sample(elementwise: Tensor) -> Tensor:
    """Sum an element-wise loss over every non-batch dimension: (B, ...) -> (B,)."""
    return elementwise.reshape(elementwise.shape[0], -1).sum(dim=1)


@dataclass(frozen=True)
class CriterionTags:
    """The tags of one criterion spec (module docstring), as ``describe(spec)`` returns them."""

    name: str
    likelihood: bool
    improper: bool
    support: str
    robust: bool
    energy: float | None


class Criterion(nn.Module):
    """Base class of every reconstruction criterion (see the module docstring)."""

    name: ClassVar[str] = ""
    n_outputs: int = 1
    is_likelihood: ClassVar[bool] = False
    improper: ClassVar[bool] = False
    support: ClassVar[str] = "real"
    robust: ClassVar[bool] = False
    energy: ClassVar[float | None] = None

    def __init__(self, **spec_values: Any) -> None:
        super().__init__()
        # Resolved spec parameters, kept for the canonical spec string and config.json.
        self.spec_values = dict(spec_values)
        # Training progress of the continuation schedule (lpae.criteria.continuation); 1 = target.
        self.progress = 1.0

    @property
    def continued(self) -> bool:
        """Whether the criterion is non-convex and trains on a convex surrogate while progress < 1."""
        return False

    def anneal(self, progress: float) -> None:
        """Train on the surrogate at ``progress`` in [0, 1] (lpae.criteria.continuation); 1 is the
        target criterion itself, the only one validation and evaluation see."""
        self.progress = check_progress(progress)

    def hold_scale(self, value: float | None) -> None:
        """Hold a ``scale=calibrated`` likelihood at scale ``value`` (None: each batch's own ML
        scale, what evaluation sees) and observe the batches' ML scales afresh
        (lpae.criteria.scale, "Epoch calibration"); nothing for a criterion without one."""

    def observed_scale(self) -> float | None:
        """Mean ML scale of the batches seen since :meth:`hold_scale` (None: not calibrated, or none seen)."""
        return None

    @classmethod
    def tags(cls, values: Mapping[str, Any]) -> CriterionTags:
        """The family's tags for resolved spec ``values`` (the class attributes by default)."""
        return CriterionTags(cls.name, cls.is_likelihood, cls.improper, cls.support, cls.robust, cls.energy)

    def forward(self, x: Tensor, out: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def reconstruct(self, out: Tensor) -> Tensor:
        """Point reconstruction from the decoder output (the location channel by default)."""
        return out if self.n_outputs == 1 else out.chunk(self.n_outputs, dim=1)[0]

    def calibrate(self, residual: Tensor) -> Tensor:
        """Maximum-likelihood scale for the given residuals (families with a scale override it)."""
        raise NotImplementedError(f"{self} has no scale to calibrate")

    def learned(self) -> dict[str, float]:
        """Learned shape and scale parameters, as plain numbers (mean over features)."""
        return {}

    def check_support(self, x: Tensor) -> None:
        """Raise ValueError when data lie outside the family's support."""
        if self.support == "unit" and x.numel() and bool(((x <= 0) | (x >= 1)).any()):
            raise ValueError(
                f"{self} needs data in the open interval (0, 1); got values in "
                f"[{float(x.min()):.4g}, {float(x.max()):.4g}] (use --preprocess minmax)"
            )

    def __str__(self) -> str:
        return CRITERIA.canonical(self.name, self.spec_values)

    def extra_repr(self) -> str:
        return str(self)


def check_pair(criterion: Criterion, x: Tensor, out: Tensor) -> None:
    """Raise ValueError unless ``out`` has ``n_outputs`` channels per channel of ``x`` (dim 1)."""
    k = criterion.n_outputs
    expected = (x.shape[0], k * x.shape[1], *x.shape[2:]) if x.dim() >= 2 else None
    if expected is None or tuple(out.shape) != expected:
        raise ValueError(
            f"{criterion}: decoder output of shape {tuple(out.shape)} does not fit data of shape "
            f"{tuple(x.shape)}; expected (batch, {k} x channels, ...) = {expected} "
            f"(data must be at least 2-D: (batch, features, ...))"
        )


class ElementwiseLoss(Criterion):
    """A plain loss rho(r) of the residual r = out - x, summed over features (not normalised)."""

    def elementwise(self, residual: Tensor) -> Tensor:  # pragma: no cover - abstract
        """rho(r) element by element, same shape as ``residual``."""
        raise NotImplementedError

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        check_pair(self, x, out)
        return per_sample(self.elementwise(out - x))


def build(spec: str, **context: Any) -> Criterion:
    """Build a criterion from its spec string, e.g. ``build("gennorm:p=learned")``."""
    return CRITERIA.build(spec, **context)


def criterion_class(name: str) -> type[Criterion]:
    """The class registered under ``name``: its class attributes are the family's tags."""
    factory = CRITERIA.entry(name).factory
    if not (isinstance(factory, type) and issubclass(factory, Criterion)):
        raise TypeError(f"criterion {name!r} must be registered with its Criterion class, got {factory!r}")
    return factory


def describe(spec: str) -> CriterionTags:
    """The tags of the criterion a spec names: ``describe("lp:0.5").robust`` is True."""
    entry, values = CRITERIA.resolve(spec)
    return criterion_class(entry.name).tags(values)


def available() -> list[str]:
    """Registered criterion names (aliases not included)."""
    return CRITERIA.names()


def normalize(spec: str) -> str:
    """Canonical form of a criterion spec."""
    return CRITERIA.normalize(spec)
