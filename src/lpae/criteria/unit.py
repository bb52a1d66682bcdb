"""Decoders for data in the unit interval: continuous Bernoulli, Beta, and the Bernoulli baseline.

The decoder output is a logit l per feature (Beta with a predicted concentration adds a raw
log-concentration channel, stacked after the logits along dim 1).

- ``cbernoulli``: the continuous Bernoulli (Loaiza-Ganem & Cunningham 2019), a proper density on
  [0, 1]: p(x | lam) = C(lam) lam^x (1 - lam)^(1 - x), C(lam) = 2 atanh(1 - 2 lam) / (1 - 2 lam),
  lam = sigmoid(l). torch.distributions.ContinuousBernoulli computes it (with a Taylor expansion
  near lam = 1/2). The point reconstruction is its mean,
  lam / (2 lam - 1) + 1 / (2 atanh(1 - 2 lam)), which is not lam.
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

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Beta, ContinuousBernoulli

from lpae.criteria.base import CRITERIA, Criterion, check_pair, per_sample
from lpae.criteria.scale import Scale, scale_param

LOGIT_CLIP = 20.0
CONCENTRATION_START = 2.0


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
        return per_sample(-ContinuousBernoulli(logits=out, validate_args=False).log_prob(x))

    def reconstruct(self, out: Tensor) -> Tensor:
        return ContinuousBernoulli(logits=out, validate_args=False).mean


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
