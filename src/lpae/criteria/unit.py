"""Decoders for data in the unit interval: continuous Bernoulli, Beta, and the Bernoulli baseline.

The decoder output is a logit l per feature (Beta with a predicted concentration adds a raw
log-concentration channel, stacked after the logits along dim 1).

- ``cbernoulli``: the continuous Bernoulli (Loaiza-Ganem & Cunningham 2019), a proper density on
  [0, 1]: p(x | lam) = C(lam) lam^x (1 - lam)^(1 - x), C(lam) = 2 atanh(1 - 2 lam) / (1 - 2 lam),
  lam = sigmoid(l). Everything is computed in logit space, exact for every logit: with
  1 - 2 lam = -tanh(l / 2) and 2 atanh(1 - 2 lam) = log((1 - lam) / lam) = -l,

      C(l) = l / tanh(l / 2),   log C = log|l| - log tanh(|l| / 2)
           = log|l| - log(-expm1(-|l|)) + log1p(exp(-|l|)),

  even in l, about log|l| for large |l|, and near l = 0 its Taylor form
  log C = log 2 + l^2/12 - 7 l^4/1440 + 31 l^6/90720 - 127 l^8/4838400 + 73 l^10/34214400
  (used for |l| < CB_TAYLOR_LOGIT = 0.1; truncation below 1e-16 there). The NLL is
  BCE(l, x) - log C(l), BCE = -x log sigmoid(l) - (1 - x) log sigmoid(-l) the cross-entropy
  (F.logsigmoid: F.binary_cross_entropy_with_logits loses the digits of a BCE near 0). The
  point reconstruction is its mean,
  lam / (2 lam - 1) + 1 / (2 atanh(1 - 2 lam)) = 1 / (1 - exp(-l)) - 1 / l, which is not lam;
  near l = 0 its Taylor form 1/2 + sum_k B_2k l^(2k-1) / (2k)! = 1/2 + l/12 - l^3/720 +
  l^5/30240 - ... up to l^13 (below |l| = 0.5 in float64, 1 in lower precision, where the direct
  form cancels; truncation below 1e-17 there).
  torch.distributions.ContinuousBernoulli is not used: it clamps lam to [eps, 1 - eps] before
  computing C and the mean, which freezes both beyond |l| ~ 16 in float32 (log C stuck at 2.769
  instead of log|l|, the mean at 0.937 instead of 1 - 1/l). That clamp also capped, by accident,
  a real property of the density: near a bound it can spike. For x = e small,
  log p(e | l) = log|l| - e |l| + O(e^(-|l|)) for l << 0, largest at l = -1/e, where it is
  log(1/e) - 1 (5.9 nats at the e = 0.001 of minmax preprocessing). On quantized data with many
  values on one lattice point at a bound (min-max scaled images: every background pixel at e)
  training drives those logits towards -1/e (digits, 15 epochs: down to -808) and is rewarded
  for the spike, not the fit (Theis et al. 2016; REFERENCES.md, quantized data).
- ``beta:concentration=K``: Beta(m K, (1 - m) K) with mean m = sigmoid(l) and concentration K
  (a positive number, learned, learned_per_feature or predicted; learned ones as
  log K = -6 + softplus(theta + 6), starting at K = 2, where Beta(1, 1) is uniform at m = 1/2);
  needs data in the open interval (0, 1). Logits are clipped to [-20, 20] so that neither
  shape parameter underflows. Reconstruction: the mean m.
- ``bernoulli``: binary cross-entropy -x log lam - (1 - x) log(1 - lam) on continuous x. It is
  NOT a normalised density on [0, 1] (it integrates to less than 1 and the missing mass depends
  on lam), so it is an improper baseline: ``is_likelihood`` is False and its NLL values are not
  comparable with those of proper likelihoods. Reconstruction: lam.

Every forward pass checks the support: data outside it raise ValueError naming the interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Beta

from lpae.criteria.base import CRITERIA, Criterion, check_pair, per_sample
from lpae.criteria.scale import Scale, scale_param

LOGIT_CLIP = 20.0
CONCENTRATION_START = 2.0
CB_TAYLOR_LOGIT = 0.1
# Taylor coefficients: log C = log 2 + sum_k c_k l^(2k+2); mean = 1/2 + sum_k c_k l^(2k+1)
CB_LOG_C_SERIES = (1 / 12, -7 / 1440, 31 / 90720, -127 / 4838400, 73 / 34214400)
CB_MEAN_SERIES = (
    1 / 12,
    -1 / 720,
    1 / 30240,
    -1 / 1209600,
    1 / 47900160,
    -691 / 1307674368000,
    1 / 74724249600,
)


def horner(coefficients: Sequence[float], t: Tensor) -> Tensor:
    """sum_k c_k t^k."""
    total = torch.full_like(t, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        total = total * t + c
    return total


def cb_log_normalizer(logits: Tensor) -> Tensor:
    """log C(l) of the continuous Bernoulli, element-wise, exact for every logit (module docstring)."""
    a = logits.abs()
    small = a < CB_TAYLOR_LOGIT
    a_far = torch.where(small, CB_TAYLOR_LOGIT, a)  # keeps log 0 and its nan gradient out of where
    direct = a_far.log() - torch.log(-torch.expm1(-a_far)) + torch.log1p(torch.exp(-a_far))
    t = torch.where(small, logits, 0.0).square()
    return torch.where(small, math.log(2.0) + t * horner(CB_LOG_C_SERIES, t), direct)


def cb_mean(logits: Tensor) -> Tensor:
    """Mean of the continuous Bernoulli, 1 / (1 - exp(-l)) - 1 / l, exact for every logit."""
    limit = 0.5 if torch.finfo(logits.dtype).eps < 1e-10 else 1.0  # below it the direct form cancels
    small = logits.abs() < limit
    l_far = torch.where(small, limit, logits)
    direct = -1.0 / torch.expm1(-l_far) - 1.0 / l_far
    l_near = torch.where(small, logits, 0.0)
    return torch.where(small, 0.5 + l_near * horner(CB_MEAN_SERIES, l_near.square()), direct)


def check_closed_unit(criterion: Criterion, x: Tensor) -> None:
    if x.numel() and bool(((x < 0) | (x > 1)).any()):
        raise ValueError(
            f"{criterion} needs data in the closed interval [0, 1]; got values in "
            f"[{float(x.min()):.4g}, {float(x.max()):.4g}] (use --preprocess minmax)"
        )


class ContinuousBernoulliNLL(Criterion):
    name = "cbernoulli"
    is_likelihood = True
    support = "unit"

    def __init__(self, feature_shape: Sequence[int] | None = None, **_: Any) -> None:
        super().__init__()

    def check_support(self, x: Tensor) -> None:
        check_closed_unit(self, x)

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        check_pair(self, x, out)
        self.check_support(x)
        bce = -x * F.logsigmoid(out) - (1 - x) * F.logsigmoid(-out)  # exact also where it is tiny
        return per_sample(bce - cb_log_normalizer(out))

    def reconstruct(self, out: Tensor) -> Tensor:
        return cb_mean(out)


class BetaNLL(Criterion):
    name = "beta"
    is_likelihood = True
    support = "unit"

    def __init__(
        self,
        concentration: float | str = "learned",
        feature_shape: Sequence[int] | None = None,
        **_: Any,
    ) -> None:
        super().__init__(concentration=concentration)
        self.concentration = Scale(
            concentration, feature_shape, owner=self.name, init=CONCENTRATION_START, name="concentration"
        )
        self.n_outputs = self.concentration.n_outputs

    def distribution(self, out: Tensor) -> Beta:
        logits, raw = (out, None) if self.n_outputs == 1 else out.chunk(2, dim=1)
        logits = logits.clamp(-LOGIT_CLIP, LOGIT_CLIP)
        log_k = self.concentration.log_scale(logits, raw, self.no_calibration)
        a = torch.exp(log_k + F.logsigmoid(logits))  # m K
        b = torch.exp(log_k + F.logsigmoid(-logits))  # (1 - m) K
        return Beta(a, b, validate_args=False)

    @staticmethod
    def no_calibration(residual: Tensor) -> Tensor:  # pragma: no cover - calibrated is not offered
        raise ValueError("beta has no calibrated concentration")

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        check_pair(self, x, out)
        self.check_support(x)
        return per_sample(-self.distribution(out).log_prob(x))

    def reconstruct(self, out: Tensor) -> Tensor:
        logits = out if self.n_outputs == 1 else out.chunk(2, dim=1)[0]
        return torch.sigmoid(logits.clamp(-LOGIT_CLIP, LOGIT_CLIP))

    def learned(self) -> dict[str, float]:
        return {}


class BernoulliBCE(Criterion):
    name = "bernoulli"
    is_likelihood = False
    improper = True  # its normaliser on continuous data is missing
    support = "unit"

    def __init__(self, feature_shape: Sequence[int] | None = None, **_: Any) -> None:
        super().__init__()

    def check_support(self, x: Tensor) -> None:
        check_closed_unit(self, x)

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        check_pair(self, x, out)
        self.check_support(x)
        return per_sample(F.binary_cross_entropy_with_logits(out, x, reduction="none"))

    def reconstruct(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out)


CRITERIA.register(
    "cbernoulli",
    ContinuousBernoulliNLL,
    [],
    summary="continuous Bernoulli NLL on [0,1]; reconstruction is its mean (not lambda)",
)
CRITERIA.register(
    "beta",
    BetaNLL,
    [scale_param("concentration", "learned", modes=("learned", "learned_per_feature", "predicted"))],
    summary="Beta NLL with mean sigmoid(l) and concentration K, data in (0,1)",
)
CRITERIA.register(
    "bernoulli",
    BernoulliBCE,
    [],
    summary="binary cross-entropy: IMPROPER on continuous data (not normalised), a baseline only",
)
