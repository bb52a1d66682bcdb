"""What each evaluation metric means for the report, read from the metric registry.

Every key is declared with its label, unit, direction and report groups beside the code that
computes it (lpae.metrics.registry). The report ranks the metrics with a direction (``METRICS``,
in declaration order) and builds its tables from the declared groups; metrics without a
direction (fitted shapes, counts, the status) go only to the exported table and the shape tables.
"""

from __future__ import annotations

from lpae.metrics import registry
from lpae.metrics.registry import Metric

METRICS: dict[str, Metric] = {key: metric for key, metric in registry.METRICS.items() if metric.ranked}

# Cross-metric matrix columns: training criterion x evaluation metric.
CROSS_METRICS = registry.in_group(registry.CROSS_METRIC)
LIKELIHOOD_METRICS = registry.in_group(registry.LIKELIHOOD)
LATENT_METRICS = registry.in_group(registry.LATENT)
ANOMALY_METRICS = registry.in_group(registry.ANOMALY)
LEARNED = registry.in_group(registry.LEARNED)
RESIDUAL_FITS = registry.in_group(registry.RESIDUAL_FIT)
# The verdict speaks about these, in this order, where present (each a ranked metric).
HEADLINE = ("clean_l2", "clean_l1", "nll_gennorm_bpd", "recon_l2", "recon_l1", "probe_acc")


def direction_word(metric: str) -> str:
    return "higher is better" if METRICS[metric].higher_is_better else "lower is better"
