"""What each evaluation metric means for the report: a label and whether higher is better.

Keys follow docs/metrics.md (lpae.metrics.evaluate). Metrics not listed here still go to the
exported table; the report ranks only the ones it knows the direction of.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    label: str
    higher_is_better: bool = False


METRICS: dict[str, MetricInfo] = {
    "recon_l0.5": MetricInfo("power-mean error, q = 0.5"),
    "recon_l1": MetricInfo("mean absolute error"),
    "recon_l2": MetricInfo("root mean squared error"),
    "recon_linf": MetricInfo("mean of per-sample max |error|"),
    "recon_l0.5_orig": MetricInfo("power-mean error q = 0.5, original units"),
    "recon_l1_orig": MetricInfo("mean absolute error, original units"),
    "recon_l2_orig": MetricInfo("root mean squared error, original units"),
    "recon_linf_orig": MetricInfo("mean max |error|, original units"),
    "psnr": MetricInfo("peak signal-to-noise ratio (dB)", True),
    "ssim": MetricInfo("structural similarity", True),
    "clean_l1": MetricInfo("mean absolute error against the clean signal"),
    "clean_l2": MetricInfo("root mean squared error against the clean signal"),
    "nll_gennorm_bpd": MetricInfo("calibrated generalized-normal NLL (bits/dim)"),
    "nll_own_bpd": MetricInfo("NLL under the run's own likelihood (bits/dim)"),
    "elbo": MetricInfo("ELBO (nats per sample)", True),
    "iwae": MetricInfo("IWAE bound (nats per sample)", True),
    "knn_acc_l0.5": MetricInfo("latent kNN accuracy, L0.5 distance", True),
    "knn_acc_l1": MetricInfo("latent kNN accuracy, L1 distance", True),
    "knn_acc_l2": MetricInfo("latent kNN accuracy, L2 distance", True),
    "probe_acc": MetricInfo("latent linear-probe accuracy", True),
    "raw_knn_acc_l0.5": MetricInfo("raw-feature kNN accuracy, L0.5 distance", True),
    "raw_knn_acc_l1": MetricInfo("raw-feature kNN accuracy, L1 distance", True),
    "raw_knn_acc_l2": MetricInfo("raw-feature kNN accuracy, L2 distance", True),
    "raw_probe_acc": MetricInfo("raw-feature linear-probe accuracy", True),
    "anomaly_auroc": MetricInfo("anomaly AUROC of the own loss", True),
    "anomaly_auprc": MetricInfo("anomaly AUPRC of the own loss", True),
    "anomaly_auroc_nll": MetricInfo("anomaly AUROC of the calibrated NLL", True),
    "anomaly_auprc_nll": MetricInfo("anomaly AUPRC of the calibrated NLL", True),
}

# Cross-metric matrix columns: training criterion x evaluation metric.
CROSS_METRICS = (
    "recon_l0.5",
    "recon_l1",
    "recon_l2",
    "recon_linf",
    "clean_l1",
    "clean_l2",
    "nll_gennorm_bpd",
)
LIKELIHOOD_METRICS = ("nll_gennorm_bpd", "nll_own_bpd", "elbo", "iwae")
LATENT_METRICS = ("knn_acc_l0.5", "knn_acc_l1", "knn_acc_l2", "probe_acc")
ANOMALY_METRICS = ("anomaly_auroc", "anomaly_auprc", "anomaly_auroc_nll", "anomaly_auprc_nll")
LEARNED = ("learned_p", "learned_df", "learned_alpha", "learned_scale")
# nll_gennorm_p is the ML shape behind nll_gennorm_bpd (every residual element of a run, subsampled)
RESIDUAL_FITS = ("residual_gennorm_p", "residual_t_df", "nll_gennorm_p")
# The verdict speaks about these, in this order, where present.
HEADLINE = ("clean_l2", "clean_l1", "nll_gennorm_bpd", "recon_l2", "recon_l1", "probe_acc")


def direction_word(metric: str) -> str:
    return "higher is better" if METRICS[metric].higher_is_better else "lower is better"
