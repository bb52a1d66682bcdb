"""Reconstruction criteria: plain L_p-family losses and decoder likelihoods.

``build(spec)`` makes a criterion from its spec string; ``available()`` lists the names.
Each family lives in its own module and registers itself on import.
"""

from lpae.criteria import lp  # noqa: F401  (registers lp, l1, l2)
from lpae.criteria.base import CRITERIA, Criterion, available, build, normalize, per_sample

__all__ = ["CRITERIA", "Criterion", "available", "build", "normalize", "per_sample"]
