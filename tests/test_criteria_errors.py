"""Bad criterion specs and data outside a family's support: ValueError naming the problem, and one
line with exit code 2 from the CLI, with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lpae import criteria
from lpae.cli import app

BAD_SPECS = [
    ("lp:0", "p=0: '0' is out of range: expected a number > 0"),
    ("lp:-1", "p=-1: '-1' is out of range: expected a number > 0"),
    ("lp:abc", "p=abc: 'abc' is not a number > 0"),
    ("lp", "missing argument p"),
    ("lp:p=0.5,q=1", "unknown argument 'q' for lp; allowed: p:"),
    ("huber:delta=-1", "delta=-1: '-1' is out of range: expected a number > 0"),
    ("gennorm:p=0", "p=0: '0' is out of range: expected a number > 0 or 'learned'"),
    ("gennorm:p=fast", "p=fast: 'fast' is not a number > 0 or 'learned'"),
    ("student_t:df=0", "df=0: '0' is out of range: expected a number > 0 or 'learned'"),
    ("gaussian:sigma=1", "unknown argument 'sigma' for gaussian; allowed: scale:"),
    ("gaussian:scale=0", "scale=0: '0' is out of range"),
    ("gaussian:scale=sometimes", "'sometimes' is not a number > 0 or 'learned' or 'learned_per_feature'"),
    ("beta:concentration=calibrated", "'calibrated' is not a number > 0 or 'learned'"),
    ("l1l2:w=1.5", "w=1.5: '1.5' is out of range: expected a number >= 0 and <= 1"),
    ("barron_nll:alpha=-1", "alpha=-1: '-1' is out of range: expected a number >= 0 or 'learned'"),
    ("lpnorm:2,1e-3,7", "lpnorm takes at most 2 positional argument(s), got 3"),
    ("l1:2", "'l1' is an alias of 'lp:1' and takes no arguments"),
    ("l3", "unknown criterion 'l3'; known:"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_bad_spec_raises_value_error_naming_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        criteria.build(spec)
    assert message in str(error.value)
    assert repr(spec) in str(error.value) or f"'{spec.split(':')[0]}'" in str(error.value)


@pytest.mark.parametrize(
    ("spec", "interval"),
    [("beta", "open interval (0, 1)"), ("cbernoulli", "closed interval [0, 1]"), ("bernoulli", "[0, 1]")],
)
@pytest.mark.parametrize("bad", [-0.5, 1.5])
def test_unit_families_refuse_data_outside_their_support(spec: str, interval: str, bad: float) -> None:
    crit = criteria.build(spec)
    x = torch.full((2, 3), 0.5)
    x[1, 2] = bad
    out = torch.zeros(2, 3 * crit.n_outputs)
    with pytest.raises(ValueError, match="needs data in the") as error:
        crit(x, out)
    assert interval in str(error.value) and "minmax" in str(error.value)
    with pytest.raises(ValueError, match="needs data in the"):
        crit.check_support(x)


def test_beta_refuses_the_closed_endpoints_but_cbernoulli_takes_them() -> None:
    x = torch.tensor([[0.0, 0.5, 1.0]])
    with pytest.raises(ValueError, match=r"open interval \(0, 1\)"):
        criteria.build("beta")(x, torch.zeros(1, 3))
    assert torch.isfinite(criteria.build("cbernoulli")(x, torch.zeros(1, 3))).all()


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--loss", "lp:0"], "out of range"),
        (["--loss", "student_t:df=0"], "out of range"),
        (["--loss", "gaussian:sigma=1"], "unknown argument 'sigma'"),
        (["--loss", "beta", "--preprocess", "standard"], "needs data in the open interval (0, 1)"),
    ],
)
def test_cli_shows_each_error_as_one_line_with_exit_code_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", "digits", "--epochs", "1", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lpae: error:") and message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_losses_listing_shows_every_family_with_arguments_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    result = runner.invoke(app, ["losses"])
    assert result.exit_code == 0, result.output
    for name in criteria.available():
        assert name in result.output
    assert "improper" in result.output
    assert "learned_per_feature" in result.output and "calibrated" in result.output
