"""The metric registry: declarations are checked, the report's groups come from it, and every key
a criterion's learned() gives is declared (the keys of evaluate() and training: tests/test_eval.py)."""

from __future__ import annotations

import pytest

from lpae import criteria
from lpae.metrics import METRICS, Metric
from lpae.metrics.registry import LATENT, declare, in_group
from lpae.study.report import metric_info
from test_criteria_contract import ALL_SPECS


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (Metric("recon_l1", "again"), "metric 'recon_l1' is declared twice"),
        (Metric("new_key", "x", better="up"), "better='up'; expected 'higher', 'lower' or None"),
        (Metric("new_key", "x", groups=("nosuch",)), r"unknown group\(s\) \['nosuch'\]; known: cross-metric"),
    ],
)
def test_bad_declarations_are_refused_and_change_nothing(metric: Metric, message: str) -> None:
    before = dict(METRICS)
    with pytest.raises(ValueError, match=message):
        declare(metric)
    assert before == METRICS


def test_groups_are_read_in_declaration_order() -> None:
    assert in_group(LATENT) == ("knn_acc_l0.5", "knn_acc_l1", "knn_acc_l2", "probe_acc")
    with pytest.raises(ValueError, match="unknown metric group 'nosuch'; known: cross-metric, likelihood"):
        in_group("nosuch")


def test_the_report_ranks_every_metric_with_a_direction_and_nothing_else() -> None:
    assert set(metric_info.METRICS) == {key for key, metric in METRICS.items() if metric.better is not None}
    assert {"clean_l2_orig", "raw_probe_acc", "anomaly_auprc_nll"} <= set(metric_info.METRICS)
    assert not {"learned_p", "nll_gennorm_p", "anomaly_base_rate", "status"} & set(metric_info.METRICS)
    assert set(metric_info.HEADLINE) <= set(metric_info.METRICS)
    assert metric_info.direction_word("psnr") == "higher is better"
    assert metric_info.direction_word("nll_gennorm_bpd") == "lower is better"


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_every_learned_key_is_declared(spec: str) -> None:
    learned = criteria.build(spec, feature_shape=(5, 8)).learned()
    assert set(learned) - set(METRICS) == set()
    assert all(key in metric_info.LEARNED for key in learned)
