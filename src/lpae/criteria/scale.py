"""Scale and shape parametrisations shared by the likelihood families.

Scale s > 0 of a location-scale family, given in a spec as ``scale=S``:

- a number: fixed;
- ``learned``: one shared scale, log s = lo + softplus(k theta - lo), the soft floor of the
  sigma-VAE (Rybkin, Daniilidis & Levine 2021) with lo = LOG_SCALE_FLOOR = -6 (s > 0.0025);
  theta starts where s = 1. The rate k = SCALE_RATE = 10 makes Adam move log s about 10 lr per
  step instead of lr: the residuals shrink by an order of magnitude while the network learns,
  and a scale that lags behind them biases every learned shape (on Gaussian noise, a learned
  gennorm p of 3.3 after 40 epochs against 1.7 for the residuals' own fit; 1.8 with k = 10);
- ``learned_per_feature``: the same with one theta per feature (needs the feature shape);
- ``calibrated``: the closed-form maximum-likelihood scale of the batch residuals (each family
  says how), passed through the same soft floor; gradients flow through it; in training, held
  per epoch (below);
- ``predicted``: heteroscedastic; the decoder emits a raw log-scale per feature next to the
  location (``n_outputs = 2``) and log s = soft floor of it.

Shapes (generalized-normal p, Student-t df, Barron alpha) are a positive number or ``learned``:

- bounded: value = low + (high - low) * sigmoid(theta), for shapes that must stay in an interval
  (p of gennorm in (0.1, 10), alpha of Barron in (0, 4));
- floored: value = low + softplus(theta), for shapes with no useful upper bound (df in (0.1, inf)).

Learning rates (issue 15). Adam moves a parameter by about lr per step whatever its gradient, so a
learned scalar trained at the network's lr has a step budget: a default ``lpae train`` run on
2,000 rows has 220 steps at lr 1e-3, and there a shape stays near its start (gennorm p = 1.80 and
1.82 for noise of p = 1 and 0.6, Student-t df = 3.94 for df = 2.5, on
``synthetic:noise=N,dim=256,scale=1``). Raising the rates instead multiplies the network's lr
(at lr 2e-2 a learned p hit its floor within 22 steps on digits). So the training loop gives a
criterion's learned parameters a learning rate of their own (lpae.train.make_optimizer and
lpae.fused.adam; the training setting ``criterion_lr``, default 0.1): parameter theta of rate k
(``RATE`` of its module: SCALE_RATE for scales, 1 for shapes) trains at criterion_lr / k, so that
k theta, the log-scale or the shape's unconstrained value, moves by about criterion_lr per step
whatever the network's lr, constant over training, without weight decay or gradient clipping
(:func:`parameter_rates`). tests/test_criteria_known_answer.py holds the known answers.

Epoch calibration (issue 15; training setting ``normalize="epoch"``, the default). A scale
fitted to each batch makes the training objective sum_b min_s NLL(batch b; s), not the
likelihood at one ML scale for all the data, min_s sum_b NLL(batch b; s), which is what
``scale=calibrated`` names and what the study's own-metric check and calibrated_nll score. For
the Gaussian the first is sum_b (B D / 2) log mean_b r^2: each batch's gradient divided by its
own MSE, so a batch holding outliers counts less, a robust loss in disguise (on the full
preset's contaminated synthetic data gaussian:scale=calibrated ended 0.60 nats per element
behind lp:2 on its own Gaussian NLL, though both have the same minimisers). Held at one value
over an epoch, the scale is fixed while the network moves, and by the envelope theorem the
gradient of the profile likelihood at the ML scale is the gradient at that fixed scale, so the
epoch descends the whole data's NLL at its ML scale, with the scale one epoch behind: the mean of
the previous epoch's batch ML scales (:meth:`Scale.hold_epoch`, :meth:`Scale.observed_mean`;
lpae.train.fit and lpae.fused.fit_group, the first epoch per batch). For the Gaussian, Laplace
and generalized normal of fixed shape the held value only sets the step size, exactly as the
energy normalisation of a plain loss does (lpae.train.energy_weight); for Student-t and Barron
it also sets where the loss turns robust.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lpae.spec import Number, Param

LOG_SCALE_FLOOR = -6.0
SCALE_RATE = 10.0  # log s = soft_floor(SCALE_RATE * theta): see the module docstring
SCALE_MODES = ("learned", "learned_per_feature", "calibrated", "predicted")


def soft_floor(log_value: Tensor, floor: float = LOG_SCALE_FLOOR) -> Tensor:
    """floor + softplus(log_value - floor): about log_value above the floor, never below it."""
    return floor + F.softplus(log_value - floor)


def inverse_soft_floor(log_value: float, floor: float = LOG_SCALE_FLOOR) -> float:
    """The theta with soft_floor(theta) = log_value (log_value > floor)."""
    return floor + math.log(math.expm1(log_value - floor))


def scale_param(
    name: str = "scale", default: float | str = "learned", modes: Sequence[str] = SCALE_MODES
) -> Param:
    return Param(
        name,
        Number(low=0, keywords=tuple(modes), float32=True),  # 1e-300 would be 0 in float32
        default,
        help="",
    )


class Scale(nn.Module):
    """A positive scale in one of the modes of the module docstring; gives log s for a batch."""

    RATE = SCALE_RATE  # the value moves with RATE * raw (module docstring, learning rates)

    def __init__(
        self,
        value: float | str,
        feature_shape: Sequence[int] | None,
        owner: str,
        init: float = 1.0,
        name: str = "scale",
    ) -> None:
        super().__init__()
        self.mode = value if isinstance(value, str) else "fixed"
        self.fixed = None if isinstance(value, str) else float(value)
        self.epoch_value: float | None = None  # scale=calibrated: the epoch's held scale
        # scale=calibrated: the sum and number of the batches' ML scales since the hold (on the
        # residuals' device, read once per epoch)
        self.observed_sum: Tensor | None = None
        self.observed_count = 0
        start = inverse_soft_floor(math.log(init)) / SCALE_RATE
        if self.mode == "learned":
            self.raw = nn.Parameter(torch.tensor(start))
        elif self.mode == "learned_per_feature":
            if feature_shape is None:
                raise ValueError(
                    f"{owner}: {name}=learned_per_feature needs the shape of one sample; build it with "
                    f"build(spec, feature_shape=x.shape[1:])"
                )
            self.raw = nn.Parameter(torch.full(tuple(feature_shape), start))

    @property
    def n_outputs(self) -> int:
        return 2 if self.mode == "predicted" else 1

    @property
    def shared(self) -> bool:
        """True when one scale serves the whole batch (fixed, learned or calibrated)."""
        return self.mode in ("fixed", "learned", "calibrated")

    def log_scale(
        self, residual: Tensor, raw: Tensor | None, log_calibrated: Callable[[Tensor], Tensor]
    ) -> Tensor:
        """log s, broadcastable to ``residual`` (B, ...): 0-dim when shared, else per feature or element."""
        if self.fixed is not None:
            return torch.tensor(math.log(self.fixed), dtype=residual.dtype, device=residual.device)
        if self.mode == "calibrated":
            return self.calibrated(lambda: log_calibrated(residual), residual)
        if self.mode == "predicted":
            if raw is None:
                raise ValueError("scale=predicted needs the decoder's raw scale channels")
            return soft_floor(raw)
        if self.mode == "learned_per_feature" and tuple(self.raw.shape) != tuple(residual.shape[1:]):
            raise ValueError(
                f"learned_per_feature scale was built for samples of shape {tuple(self.raw.shape)}, "
                f"got {tuple(residual.shape[1:])}"
            )
        return soft_floor(SCALE_RATE * self.raw)

    def calibrated(self, log_ml_scale: Callable[[], Tensor], like: Tensor) -> Tensor:
        """scale=calibrated: log s (0-dim, like ``like``'s dtype and device), the soft-floored
        ``log_ml_scale()`` of the batch or the epoch's held value (module docstring, epoch
        calibration); the batch's ML scale is observed either way."""
        if self.epoch_value is None:
            log_value = soft_floor(log_ml_scale())
            self.observe(log_value.detach())
            return log_value
        with torch.no_grad():
            self.observe(soft_floor(log_ml_scale()))
        return torch.tensor(math.log(self.epoch_value), dtype=like.dtype, device=like.device)

    def hold_epoch(self, value: float | None) -> None:
        """scale=calibrated: hold the scale at ``value`` from now on (None: each batch's own ML
        scale) and observe the batches' ML scales afresh (module docstring, epoch calibration)."""
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"a held scale must be a positive number, got {value}")
        self.epoch_value = value
        self.observed_sum, self.observed_count = None, 0

    def observe(self, log_value: Tensor) -> None:
        value = log_value.exp().double()
        self.observed_sum = value if self.observed_sum is None else self.observed_sum + value
        self.observed_count += 1

    def observed_mean(self) -> float | None:
        """scale=calibrated: the mean ML scale of the batches seen since :meth:`hold_epoch` (None if
        none, or if it is not finite: a diverged epoch)."""
        if self.mode != "calibrated" or self.observed_sum is None:
            return None
        value = float(self.observed_sum) / self.observed_count  # one host sync per epoch
        return value if math.isfinite(value) and value > 0 else None

    @contextmanager
    def held(self, value: float) -> Iterator[None]:
        """Within the block, act as the fixed scale ``value`` (e.g. a calibrated scale fitted once over
        a whole evaluated split, lpae.metrics.likelihood.vae_bounds); the mode is restored after."""
        saved = self.mode, self.fixed
        self.mode, self.fixed = "fixed", float(value)
        try:
            yield
        finally:
            self.mode, self.fixed = saved

    def learned_value(self) -> float | None:
        """Mean learned scale over features, or None when the scale is not learned."""
        if self.mode not in ("learned", "learned_per_feature"):
            return None
        return float(soft_floor(SCALE_RATE * self.raw.detach()).exp().mean())


class Shape(nn.Module):
    """A positive shape parameter: a fixed number, or learned within (low, high) or (low, inf)."""

    RATE = 1.0

    def __init__(self, value: float | str, low: float, high: float | None, init: float) -> None:
        super().__init__()
        self.low, self.high = low, high
        self.fixed = None if value == "learned" else float(value)
        if self.fixed is None:
            if high is None:
                start = math.log(math.expm1(init - low))
            else:
                fraction = (init - low) / (high - low)
                start = math.log(fraction / (1 - fraction))
            self.raw = nn.Parameter(torch.tensor(start))

    @property
    def learned(self) -> bool:
        return self.fixed is None

    def value(self) -> float | Tensor:
        """The number when fixed (so kernels can special-case it), else a 0-dim tensor."""
        if self.fixed is not None:
            return self.fixed
        if self.high is None:
            return self.low + F.softplus(self.raw)
        return self.low + (self.high - self.low) * torch.sigmoid(self.raw)

    def learned_value(self) -> float | None:
        if self.fixed is not None:
            return None
        return float(torch.as_tensor(self.value()).detach())


def parameter_rates(criterion: nn.Module) -> dict[str, float]:
    """The rate k of each learned parameter of ``criterion``, by its name in
    ``criterion.named_parameters()``: its module's ``RATE`` (module docstring), 1 for others."""
    rates = {}
    for prefix, module in criterion.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            rates[f"{prefix}.{name}" if prefix else name] = float(getattr(module, "RATE", 1.0))
    return rates
