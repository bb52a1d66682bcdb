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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lpae.estimator import LpAutoencoder


def check_contamination(contamination: Any) -> float:
    if (
        isinstance(contamination, bool)
        or not isinstance(contamination, int | float)
        or not 0 < contamination <= 0.5
    ):
        raise ValueError(f"contamination must be a number in (0, 0.5], got {contamination!r}")
    return float(contamination)


class LpAnomalyDetector(LpAutoencoder):
    """An LpAutoencoder whose anomaly score is the calibrated NLL (see the module docstring).

    Parameters are those of :class:`lpae.estimator.LpAutoencoder` plus ``contamination``, the
    expected share of outliers in the training data, in (0, 0.5] (default 0.1).
    """

    def __init__(
        self,
        loss: str = "l2",
        contamination: float = 0.1,
        model: str = "ae",
        hidden: Sequence[int] = (64, 32),
        latent: int = 8,
        activation: str = "relu",
        corruption: str | None = None,
        beta: float = 1.0,
        epochs: int = 50,
        lr: float = 1e-3,
        batch_size: int = 128,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        schedule: str = "none",
        clip: float | None = None,
        patience: int | None = None,
        validation_fraction: float = 0.1,
        preprocess: str = "auto",
        device: str = "cpu",
        random_state: Any = None,
    ) -> None:
        super().__init__(
            loss=loss,
            model=model,
            hidden=hidden,
            latent=latent,
            activation=activation,
            corruption=corruption,
            beta=beta,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weight_decay=weight_decay,
            optimizer=optimizer,
            schedule=schedule,
            clip=clip,
            patience=patience,
            validation_fraction=validation_fraction,
            preprocess=preprocess,
            device=device,
            random_state=random_state,
        )
        self.contamination = contamination

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
