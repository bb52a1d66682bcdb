"""The keys training adds to a run's metrics.json beside those of ``evaluate``.

lpae.experiment.write_trained_run writes them: ``reason`` when training diverged, the criterion's
learned parameters (``Criterion.learned()``: means over features, where the criterion has them)
and the training bookkeeping. They are declared here, with the evaluation metrics, because the
criteria come before the metrics in lpae's data flow and may not import them.
"""

from __future__ import annotations

from lpae.metrics.registry import LEARNED, Metric, declare

declare(
    Metric("reason", "why training diverged"),
    Metric("learned_p", "learned generalized-normal shape p", groups=(LEARNED,)),
    Metric("learned_df", "learned Student-t degrees of freedom", groups=(LEARNED,)),
    Metric("learned_alpha", "learned Barron shape alpha", groups=(LEARNED,)),
    Metric("learned_scale", "learned scale, mean over features", "preprocessed units", groups=(LEARNED,)),
    Metric("epochs_run", "epochs trained", "epochs"),
    Metric("best_epoch", "the epoch whose weights were kept (best validation loss)", "epochs"),
    Metric("train_seconds", "training time", "s"),
)
