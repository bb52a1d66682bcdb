"""One-class protocol and training contamination: the library pieces, config.json, the CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lpae.cli import app
from lpae.config import ModelSettings, RunConfig, RunSpec, TrainSettings
from lpae.data import load
from lpae.experiment import prepare_run, train_run
from lpae.protocol import OUTLIER_STD, check_normal_classes, contaminate, normal_rows
from lpae.runs import prepare_data

runner = CliRunner()
TINY = {"model": ModelSettings(hidden=(16,), latent=4), "train": TrainSettings(epochs=1, checkpoint_every=0)}


def test_contamination_replaces_a_seeded_fraction_by_gross_outliers() -> None:
    rng = np.random.default_rng(0)
    x = (5.0 + 2.0 * rng.standard_normal((1000, 3, 2))).astype(np.float32)
    x[:, 0, 0] = 7.0  # a constant feature stays constant
    dirty, mask = contaminate(x, 0.1, seed=3)
    assert mask.sum() == 100 and dirty.dtype == x.dtype
    np.testing.assert_array_equal(dirty[~mask], x[~mask])  # the other rows are untouched
    z = (dirty[mask] - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1)  # in std units
    assert np.std(z[:, 1:, :]) == pytest.approx(OUTLIER_STD, rel=0.1)
    np.testing.assert_allclose(dirty[mask][:, 0, 0], 7.0, rtol=1e-6)
    again, mask_again = contaminate(x, 0.1, seed=3)
    np.testing.assert_array_equal(again, dirty)
    np.testing.assert_array_equal(mask_again, mask)
    other, other_mask = contaminate(x, 0.1, seed=4)
    assert not np.array_equal(other_mask, mask)
    clean, none = contaminate(x, 0.0, seed=3)
    assert clean is x and not none.any()
    assert contaminate(x, 0.0004, seed=3)[1].sum() == 0  # round(0.4) rows
    assert x[:, 1, 1].std() < 3  # the input was not modified


def test_normal_rows_and_class_checks() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2, 3])
    np.testing.assert_array_equal(normal_rows(np.arange(7), labels, (0, 2)), [0, 2, 3, 5])
    np.testing.assert_array_equal(normal_rows(np.arange(7), labels, None), np.arange(7))
    assert check_normal_classes([2, 0, 2], labels, "toy") == (0, 2)
    assert check_normal_classes(None, None, "toy") is None


@pytest.mark.parametrize(
    ("classes", "labels", "error", "message"),
    [
        ((0, 7), np.array([0, 1, 2]), ValueError, "7 not among the classes of 'toy' \\(0, 1, 2\\)"),
        ((0, 1, 2), np.array([0, 1, 2]), ValueError, "names every class"),
        ((0,), None, ValueError, "needs a labelled data set"),
        ((), np.array([0, 1]), ValueError, "at least one class"),
        (("a",), np.array([0, 1]), TypeError, "integer class labels"),
    ],
)
def test_bad_normal_classes(classes: tuple, labels: np.ndarray | None, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        check_normal_classes(classes, labels, "toy")


def test_config_records_the_protocol_and_prepare_data_applies_it() -> None:
    dataset = load("digits")
    spec = RunSpec(data="digits", normal_classes=(4, 1, 0), contaminate=0.2, split_seed=5, **TINY)
    config = json.loads(json.dumps(prepare_run(spec, dataset)[0].to_json()))  # as stored
    assert config["data"]["normal_classes"] == [0, 1, 4]
    assert config["data"]["contaminate"] == 0.2 and config["data"]["contaminate_seed"] == 5
    prepared = prepare_data(RunConfig.from_json(config), dataset)  # as read back
    y = dataset.y
    assert y is not None and prepared.all_train is not None
    assert set(y[prepared.train]) == {0, 1, 4} and set(y[prepared.val]) == {0, 1, 4}
    # the test split keeps every normal row and anomalies at 10% of its rows (the default rate)
    assert config["data"]["anomaly_rate"] == 0.1
    normal = np.isin(y[prepared.test], [0, 1, 4])
    assert set(y[prepared.test[~normal]]) <= set(range(10)) - {0, 1, 4}
    assert (~normal).sum() == round(0.1 / 0.9 * normal.sum())
    assert set(y[prepared.all_train]) == set(range(10)) and set(prepared.train) <= set(prepared.all_train)
    # preprocessing fitted on the clean normal training rows
    mean = np.asarray(config["data"]["preprocess"]["shift"]).reshape(dataset.shape)
    np.testing.assert_allclose(mean, dataset.x[prepared.train].mean(axis=0), rtol=1e-5, atol=1e-5)
    # contamination: 20 % of the training rows differ, validation and test rows are clean
    assert prepared.train_outliers is not None
    assert prepared.train_outliers.sum() == round(0.2 * len(prepared.train))
    train = prepared.tensor("train").numpy()
    clean = prepared.preprocessor.transform(dataset.x[prepared.train])
    changed = np.any(train != clean, axis=1)
    np.testing.assert_array_equal(changed, prepared.train_outliers)
    np.testing.assert_array_equal(
        prepared.tensor("test").numpy(), prepared.preprocessor.transform(dataset.x[prepared.test])
    )


def test_default_runs_record_no_protocol() -> None:
    config = prepare_run(RunSpec(data="iris", **TINY), load("iris"))[0]
    assert config.data.normal_classes is None and config.data.contaminate == 0.0
    prepared = prepare_data(config)
    assert prepared.train_x is None and np.array_equal(prepared.all_train, prepared.train)  # type: ignore[arg-type]


def test_one_class_run_reports_anomaly_metrics_and_a_plain_run_does_not(tmp_path: Path) -> None:
    spec = RunSpec(data="iris", loss="lp:1", normal_classes=(0,), **TINY)
    metrics = train_run(spec, tmp_path / "one-class")
    for key in ("anomaly_auroc", "anomaly_auprc", "anomaly_auroc_nll", "anomaly_auprc_nll"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["anomaly_base_rate"] == pytest.approx(0.1, abs=0.02)  # the default anomaly rate
    plain = train_run(RunSpec(data="iris", loss="lp:1", **TINY), tmp_path / "plain")
    assert not any(key.startswith("anomaly_") for key in plain)
    assert "knn_acc_l1" in metrics and "knn_acc_l1" in plain


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--normal-classes", "0,x"], "--normal-classes must be comma-separated integers"),
        (["--normal-classes", "0,12"], "12 not among the classes of 'digits'"),
        (["--normal-classes", "0,1,2,3,4,5,6,7,8,9"], "names every class of 'digits'"),
        (["--data", "diabetes", "--normal-classes", "0"], "needs a labelled data set; 'diabetes'"),
        (["--contaminate", "1.5"], "--contaminate must be a fraction in [0, 1), got 1.5"),
        (["--contaminate", "-0.1"], "--contaminate must be a fraction in [0, 1)"),
    ],
)
def test_bad_protocol_options_are_one_line_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["train", "--out", str(out), "--epochs", "1", "--quiet", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lpae: error:") and message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_records_both_options(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", "iris", "--hidden", "8", "--latent", "2", "--epochs", "1", "--quiet"]
    protocol = ["--normal-classes", "2,0", "--contaminate", "0.1", "--anomaly-rate", "0.25"]
    result = runner.invoke(app, [*args, *protocol, "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())["data"]
    assert config["normal_classes"] == [0, 2] and config["contaminate"] == 0.1
    assert config["anomaly_rate"] == 0.25
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["anomaly_auroc"] <= 1
    assert metrics["anomaly_base_rate"] == pytest.approx(0.25, abs=0.03)


def test_anomaly_subsample_keeps_normals_and_a_seeded_fraction_of_anomalies() -> None:
    from lpae.protocol import anomaly_subsample

    labels = np.repeat(np.arange(10), 30)  # 300 rows, 10 classes
    rows = np.arange(0, 300, 2)  # 150 test rows: 15 normal (class 0), 135 anomalies
    kept = anomaly_subsample(rows, labels, [0], 0.2, seed=3)
    assert np.all(np.diff(kept) > 0) and set(kept) <= set(rows)
    assert (labels[kept] == 0).sum() == 15 and (labels[kept] != 0).sum() == round(0.25 * 15)
    np.testing.assert_array_equal(kept, anomaly_subsample(rows, labels, [0], 0.2, seed=3))  # seeded
    assert not np.array_equal(kept, anomaly_subsample(rows, labels, [0], 0.2, seed=4))
    few = np.concatenate([np.arange(0, 30), [40]])  # 30 normal, 1 anomaly: kept as they are
    np.testing.assert_array_equal(anomaly_subsample(few, labels, [0], 0.5, seed=0), few)
    with pytest.raises(ValueError, match="anomaly rate must be a fraction in"):
        anomaly_subsample(rows, labels, [0], 1.0, seed=0)


def test_runs_written_before_the_anomaly_rate_keep_every_test_anomaly() -> None:
    dataset = load("digits")
    config = prepare_run(RunSpec(data="digits", normal_classes=(0,), **TINY), dataset)[0].to_json()
    del config["data"]["anomaly_rate"]  # as written by 0.1
    prepared = prepare_data(RunConfig.from_json(config), dataset)
    assert set(dataset.y[prepared.test]) == set(range(10))
    assert np.isin(dataset.y[prepared.test], [0]).mean() < 0.2  # anomalies are most of the test rows
