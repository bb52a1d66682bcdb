"""``LpAnomalyDetector``: autoencoder anomaly scores under any criterion, with PyOD's interface.

    detector = LpAnomalyDetector(loss="student_t:df=learned", contamination=0.05, random_state=0)
    detector.fit(X_train)
    scores = detector.decision_function(X_test)   # higher = more anomalous
    labels = detector.predict(X_test)             # 0 inlier, 1 outlier

The anomaly score of a row x is its calibrated negative log-likelihood under the fitted decoder,
score(x) = -log p(x) = -LpAutoencoder.score_samples(x) (nats; see lpae.estimator for how the
scale is calibrated and what plain losses are scored as). For ``lp:2`` this ranks rows like the
squared Euclidean reconstruction error; for other criteria it is not a Euclidean distance: an
``lp:p`` detector ranks by sum |r|^p, a Student-t one by sum log(1 + (r/s)^2 / df), which weighs
one wild feature much less than many moderately wrong ones.

As in PyOD (Zhao, Nasrullah & Li 2019, JMLR): after ``fit``, ``decision_scores_`` holds the
training rows' scores, ``threshold_`` is their (1 - contamination) quantile, and ``labels_`` =
1 where a training score exceeds it; ``predict`` applies the same threshold to new rows;
``predict_proba`` (PyOD's "linear" method) min-max scales scores by the training scores' range
into [0, 1] and returns (P(inlier), P(outlier)) columns.

``detector.save(path)`` and ``LpAnomalyDetector.load(path)`` keep a fitted detector, its
threshold and training scores included (lpae.estimator_io; no pickle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lpae.estimator import PARAMETERS, LpAutoencoder
from lpae.estimator_params import EstimatorParameter, with_parameters


def check_contamination(contamination: Any) -> float:
    if (
        isinstance(contamination, bool)
        or not isinstance(contamination, int | float)
        or not 0 < contamination <= 0.5
    ):
        raise ValueError(f"contamination must be a number in (0, 0.5], got {contamination!r}")
    return float(contamination)


@with_parameters(
    [
        *PARAMETERS,
        EstimatorParameter(
            "contamination", 0.1, "float", "expected share of outliers in the training data, in (0, 0.5]"
        ),
    ]
)
class LpAnomalyDetector(LpAutoencoder):
    """An LpAutoencoder whose anomaly score is the calibrated NLL (see the module docstring).

    The parameters are those of :class:`lpae.estimator.LpAutoencoder` plus ``contamination``.

    Attributes
    ----------
    decision_scores_ : ndarray of shape (n_samples,)
        The training rows' anomaly scores, -log p(x) in nats.
    threshold_ : float
        The (1 - contamination) quantile of ``decision_scores_``.
    labels_ : ndarray of shape (n_samples,)
        1 for training rows scored above ``threshold_``, else 0.
    """

    SAVED_VALUES = ("threshold_",)
    SAVED_ARRAYS = ("decision_scores_", "labels_")

    def fit(self, X: Any, y: Any = None) -> LpAnomalyDetector:
        """Train on X (``y`` is ignored: unsupervised) and set the contamination threshold."""
        contamination = check_contamination(self.contamination)
        super().fit(X, y)
        scores = self.decision_function(X)
        self.decision_scores_ = scores
        self.threshold_ = float(np.quantile(scores.astype(np.float64), 1.0 - contamination))
        self.labels_ = (scores > self.threshold_).astype(int)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score of each row, -log p(x) in nats: higher is more anomalous."""
        return -self.score_samples(X)

    def predict(self, X: Any) -> np.ndarray:
        """1 for rows scored above ``threshold_`` (outliers), 0 for the others."""
        return (self.decision_function(X) > self.threshold_).astype(int)

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n_samples, 2): P(inlier), P(outlier) by min-max scaling against the training scores."""
        scores = self.decision_function(X).astype(np.float64)
        low, high = float(self.decision_scores_.min()), float(self.decision_scores_.max())
        outlier = np.clip((scores - low) / max(high - low, np.finfo(np.float64).tiny), 0.0, 1.0)
        return np.column_stack([1.0 - outlier, outlier])
