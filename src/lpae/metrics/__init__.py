"""Evaluation: every trained model scored under every metric (docs/metrics.md lists each key).

``evaluate(run)`` (or ``evaluate(run, data=SPEC)``) returns one flat dict; the building blocks
(power means, kNN under L_k, PSNR / SSIM, anomaly AUROC) are usable on their own. Every key is
declared with its label, unit and direction in ``METRICS`` (lpae.metrics.registry), beside the
code that computes it; the study report reads it.
"""

# isort: off
# Import order is declaration order, which the report keeps (evaluate, training and health declare
# only unranked keys, so their place does not matter).
from lpae.metrics import reconstruction, images, likelihood, latent, anomaly, training, health  # noqa: F401

# isort: on
from lpae.metrics.anomaly import anomaly_metrics
from lpae.metrics.evaluate import decoder_outputs, encode, evaluate, reconstruct
from lpae.metrics.health import history_health
from lpae.metrics.images import image_metrics, psnr, ssim
from lpae.metrics.latent import knn_accuracy, knn_predict, probe_accuracy
from lpae.metrics.likelihood import bits_per_dim, gennorm_nll, own_nll_bpd, residual_shape, vae_bounds
from lpae.metrics.reconstruction import clean_metrics, power_mean, reconstruction_metrics
from lpae.metrics.registry import METRICS, Metric

__all__ = [
    "METRICS",
    "Metric",
    "anomaly_metrics",
    "bits_per_dim",
    "clean_metrics",
    "decoder_outputs",
    "encode",
    "evaluate",
    "gennorm_nll",
    "history_health",
    "image_metrics",
    "knn_accuracy",
    "knn_predict",
    "own_nll_bpd",
    "power_mean",
    "probe_accuracy",
    "psnr",
    "reconstruct",
    "reconstruction_metrics",
    "residual_shape",
    "ssim",
    "vae_bounds",
]
