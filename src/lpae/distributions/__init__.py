"""Decoder families as ``torch.distributions.Distribution`` objects.

torch has the Normal, Laplace, StudentT, ContinuousBernoulli and Beta; this package adds the two
it lacks, :class:`GeneralizedNormal` (shape p) and :class:`Barron` (alpha >= 0), and
:func:`decoder_distribution`, which turns a likelihood criterion and a decoder output into the
distribution p(x | z) that the criterion's NLL is the negative log-density of (summed over
features). docs/criteria.md, "Distributions".
"""

from lpae.distributions.barron import Barron
from lpae.distributions.decoder import decoder_distribution
from lpae.distributions.gennorm import GeneralizedNormal

__all__ = ["Barron", "GeneralizedNormal", "decoder_distribution"]
