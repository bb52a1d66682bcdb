"""Criterion tags, declared once on each class: every spec answers them, with the known answers,
and the report's verdict and `lpae losses` read them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lpae import criteria
from lpae.cli import app
from lpae.study.report.verdict import criterion_family
from test_criteria_contract import ALL_SPECS


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_every_criterion_answers_its_tags(spec: str) -> None:
    tags = criteria.describe(spec)
    built = criteria.build(spec, feature_shape=(5, 8))
    assert tags.name == built.name
    assert (tags.likelihood, tags.improper) == (built.is_likelihood, built.improper)
    assert tags.support == built.support
    assert isinstance(tags.robust, bool)
    assert tags.energy is None or tags.energy > 0


@pytest.mark.parametrize(
    ("spec", "robust", "energy", "family"),
    [
        ("lp:0.5", True, 0.5, "robust"),
        ("lp:p=1,eps=0.01", True, 1.0, "robust"),
        ("lp:1.5", False, 1.5, "other"),
        ("lp:2", False, 2.0, "l2"),
        ("l2", False, 2.0, "l2"),  # an alias answers as its target
        ("lpnorm:2", False, 2.0, "l2"),
        ("gaussian:scale=calibrated", False, 2.0, "l2"),
        ("laplace", True, 1.0, "robust"),
        ("gennorm:p=learned", True, None, "robust"),
        ("gennorm:p=0.7,scale=calibrated", True, 0.7, "robust"),
        ("student_t:df=learned", True, None, "robust"),
        ("huber:delta=0.5", True, None, "robust"),
        ("barron:alpha=learned", True, None, "robust"),
        ("barron_nll:alpha=learned", True, None, "robust"),
        ("charbonnier", False, None, "other"),
        ("cbernoulli", False, None, "other"),
    ],
)
def test_known_tags_and_the_verdicts_families(
    spec: str, robust: bool, energy: float | None, family: str
) -> None:
    tags = criteria.describe(spec)
    assert (tags.robust, tags.energy) == (robust, energy)
    assert criterion_family(spec) == family


def test_unknown_criteria_are_refused_by_describe_and_other_in_the_verdict() -> None:
    with pytest.raises(ValueError, match="spec 'nosuch:1': unknown criterion 'nosuch'; known: "):
        criteria.describe("nosuch:1")
    with pytest.raises(ValueError, match="spec 'lp': missing argument p"):
        criteria.describe("lp")
    assert criterion_family("nosuch:1") == "other"


def test_losses_listing_reads_the_class_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    from lpae.cli.show import console

    monkeypatch.setattr(console, "width", 200)  # every column (at 80 the detail columns give way)
    result = CliRunner().invoke(app, ["losses"])
    assert result.exit_code == 0, result.output
    rows = [[cell.strip() for cell in line.split("│")[1:4]] for line in result.output.splitlines()]
    first_lines = {row[0]: row[1:] for row in rows if len(row) == 3 and row[0]}
    assert first_lines["bernoulli"] == ["no: improper", "(0, 1)"]
    assert first_lines["cbernoulli"] == ["yes", "(0, 1)"]
    assert first_lines["logcosh"] == ["no", "real"]
