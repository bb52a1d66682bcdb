"""scikit-learn's own estimator checks on LpAutoencoder, for several criteria and models.

Every check passes, so the dict of expected failures is empty; a check that starts failing must
either be fixed or be listed here with the reason it cannot pass.
"""

from __future__ import annotations

from typing import Any

from sklearn.utils.estimator_checks import parametrize_with_checks

from lpae.estimator import LpAutoencoder

EXPECTED_FAILED_CHECKS: dict[str, str] = {}

TINY = {"hidden": (8,), "latent": 2, "epochs": 2, "batch_size": 64}
ESTIMATORS = [
    LpAutoencoder(**TINY),  # plain L2: scored as gennorm p = 2 at its ML scale
    LpAutoencoder(loss="lp:0.5", model="dae", **TINY),  # fractional p, denoising
    LpAutoencoder(loss="student_t:df=learned", model="vae", **TINY),  # shared scale frozen after fit
    LpAutoencoder(loss="cbernoulli", **TINY),  # unit interval, minmax preprocessing, its own NLL
]


def expected_failures(estimator: Any) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_conventions(estimator: LpAutoencoder, check: Any) -> None:
    check(estimator)
