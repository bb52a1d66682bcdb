"""Training health: history flags on both sides of each threshold, own-metric specs and values,
the own-metric judgement, the store's health tables, and a tiny study with a deliberately bad run
flagged in the store, the exported table and the report, before the verdict names a winner."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from lpae.config import ModelSettings, RunSpec, TrainSettings
from lpae.criteria import build, calibrated_nll, own_metric, own_metric_spec
from lpae.experiment import train_run
from lpae.metrics import history_health
from lpae.metrics.health import UNDER_TRAINED_FALL, UNSTABLE_RISE
from lpae.models import build_model
from lpae.study import Store, parse_grid, run_study, study_table
from lpae.study.health import OWN_METRIC_TOLERANCE, Member, own_metric_flags, update_health
from lpae.study.report import build_report
from lpae.study.store import Outcome, Row

# --- history flags ---------------------------------------------------------------------------------


def tail_curve(tail_share: float, n: int = 20, offset: float = 0.0) -> np.ndarray:
    """Falls by 1 over the first 16 epochs, then by ``tail_share`` (of the range) over the last 4."""
    head = np.linspace(1.0, tail_share, n - 4)
    tail = np.linspace(tail_share, 0.0, 5)[1:]
    return np.concatenate([head, tail]) + offset


def test_a_steady_fall_is_under_trained_and_a_flat_tail_is_not() -> None:
    falling = history_health(np.linspace(5.0, 1.0, 25))
    assert falling["under_trained"] and falling["val_tail_fall"] == pytest.approx(5 / 24)
    converged = history_health(2.0 + np.exp(-np.arange(1, 26) / 2.0))
    assert not converged["under_trained"] and not converged["unstable"]
    assert converged["val_tail_fall"] < 0.01


@pytest.mark.parametrize("offset", [0.0, -7.5])  # a likelihood's validation loss may be negative
def test_under_training_threshold_both_sides(offset: float) -> None:
    below = history_health(tail_curve(UNDER_TRAINED_FALL - 0.01, offset=offset))
    above = history_health(tail_curve(UNDER_TRAINED_FALL + 0.01, offset=offset))
    assert below["val_tail_fall"] == pytest.approx(UNDER_TRAINED_FALL - 0.01)
    assert above["val_tail_fall"] == pytest.approx(UNDER_TRAINED_FALL + 0.01)
    assert not below["under_trained"] and above["under_trained"]


@pytest.mark.parametrize("offset", [0.0, -3.0])
def test_instability_threshold_both_sides(offset: float) -> None:
    base = np.concatenate([np.linspace(1.0, 0.0, 15), np.zeros(4)]) + offset
    low = history_health([*base, offset + UNSTABLE_RISE - 0.01])
    high = history_health([*base, offset + UNSTABLE_RISE + 0.01])
    assert low["val_end_rise"] == pytest.approx(UNSTABLE_RISE - 0.01)
    assert not low["unstable"] and high["unstable"]
    # a noisy but flat tail is no fall: the best-so-far curve does not move in it
    assert not high["under_trained"] and high["val_tail_fall"] == 0


def test_flat_short_and_broken_histories() -> None:
    flat = history_health([0.3] * 10)
    assert flat == {"val_tail_fall": 0.0, "val_end_rise": 0.0, "under_trained": False, "unstable": False}
    assert history_health([1.0]) == {} and history_health([]) == {}
    assert history_health([1.0, float("nan"), 0.5]) == {}
    assert history_health([1.0, 0.5])["under_trained"]  # two epochs, all of the fall in the last


# --- own metrics -----------------------------------------------------------------------------------

LEARNED = {"learned_p": 1.25, "learned_df": 3.5, "learned_alpha": 0.75, "learned_scale": 0.2}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("lp:0.5", "lp:p=0.5"),
        ("l2", "lp:p=2"),
        ("lp:p=0.5,eps=0.3", "lp:p=0.5,eps=0.3"),
        ("lpnorm:1.5", "lpnorm:p=1.5"),
        ("huber:delta=0.5", "huber:delta=0.5"),
        ("cauchy", "cauchy"),
        ("barron:alpha=learned", "barron:alpha=0.75"),
        ("gaussian:scale=0.3", "gaussian:scale=calibrated"),
        ("laplace:scale=predicted", "laplace:scale=calibrated"),
        ("gennorm:p=learned,scale=learned", "gennorm:p=1.25,scale=calibrated"),
        ("student_t:df=learned", "student_t:df=3.5,scale=calibrated"),
        ("barron_nll:alpha=learned", "barron_nll:alpha=0.75,scale=calibrated"),
        ("cbernoulli", None),
        ("beta", None),
        ("bernoulli", None),
    ],
)
def test_own_metric_specs(spec: str, expected: str | None) -> None:
    assert own_metric_spec(spec, LEARNED) == expected


def test_a_learned_shape_without_its_value_has_no_own_metric() -> None:
    assert own_metric_spec("gennorm:p=learned", {}) is None
    assert own_metric_spec("student_t:df=learned", {"learned_df": float("nan")}) is None
    assert own_metric_spec("gennorm:p=1.5,scale=learned", {}) == "gennorm:p=1.5,scale=calibrated"


def test_own_metric_values_are_the_energies_and_calibrated_nlls() -> None:
    residual = torch.randn(50, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r = residual.numpy()
    assert own_metric("lp:p=2", residual) == pytest.approx(np.mean(r**2))
    assert own_metric("lpnorm:p=2,eps=0", residual) == pytest.approx(np.linalg.norm(r, axis=1).mean() / 6)
    sigma2 = np.mean(r**2)
    assert own_metric("gaussian:scale=calibrated", residual) == pytest.approx(
        0.5 * math.log(2 * math.pi * sigma2) + 0.5
    )
    value = own_metric("student_t:df=3.5,scale=calibrated", residual)
    scale = calibrated_nll(residual, "student_t:df=3.5").scale
    assert value == pytest.approx(-stats.t(3.5, scale=scale).logpdf(r).mean(), rel=1e-9)
    with pytest.raises(ValueError, match="not an own-metric spec"):
        own_metric("cbernoulli", residual)


@pytest.mark.parametrize(
    ("kind", "corruption"),
    [("ae", None), ("dae", "gaussian:std=0.3"), ("dae", "mask:rate=0.4"), ("vae", None)],
)
def test_the_objective_pass_is_what_the_training_objective_scores(kind: str, corruption: str | None) -> None:
    """criterion(x, output) + term of objective_pass equals the model's objective with the same
    noise: the own-metric check scores a DAE on corrupted inputs and a VAE with its KL."""
    torch.manual_seed(0)
    criterion = build("lp:p=2")
    beta = {"beta": 0.7} if kind == "vae" else {}
    settings = ModelSettings(model=kind, hidden=(16,), latent=3, corruption=corruption, **beta)
    model = build_model((6,), settings, criterion).double().eval()
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        out, term = model.objective_pass(x, torch.Generator().manual_seed(2))
        objective = model.objective(x, torch.Generator().manual_seed(2), kl_weight=model.kl_weight())
        noiseless = model(x)
    torch.testing.assert_close(criterion(x, out) + term, objective)
    if kind == "vae":
        mu, log_var = model.posterior(x)
        torch.testing.assert_close(term, 0.7 * model.kl(mu, log_var))
    else:
        assert not term.any()
    assert torch.equal(out, noiseless) == (kind == "ae")


# --- the judgement ---------------------------------------------------------------------------------


def member(criterion: str, seed: int, own: str | None = "") -> Member:
    spec = {"data": "d", "loss": criterion, "train": {"seed": seed}}
    row = Row(f"{criterion}-{seed}", json.dumps(spec), 0, "done", {}, "", "runs/x", None, None, None, 1)
    return Member(row, "comparison", seed, criterion, criterion if own == "" else own)


def judge(own: list[float], rival: list[float], criterion: str = "lp:p=1") -> dict[str, object]:
    """Flags of ``criterion`` whose runs score ``own`` on their own metric and the rival ``rival``."""
    members = [member(criterion, s) for s in range(len(own))]
    members += [member("lp:p=2", s, None) for s in range(len(rival))]
    values: dict[tuple[str, str], float | None] = {}
    for s, (a, b) in enumerate(zip(own, rival, strict=True)):
        values[(f"{criterion}-{s}", criterion)] = a
        values[(f"lp:p=2-{s}", criterion)] = b
    flags = own_metric_flags(members, values)
    assert set(flags) == {f"{criterion}-{s}" for s in range(len(own))}  # the rival has no own metric
    return flags[f"{criterion}-0"]


def test_a_criterion_beaten_on_its_own_metric_beyond_the_tolerance_is_flagged() -> None:
    clear = judge([1.05, 1.06, 1.04], [1.0, 1.0, 1.0])
    assert clear["own_metric_failure"] and clear["own_metric_rival"] == "lp:p=2"
    assert clear["own_metric_margin"] == pytest.approx(0.05)
    close = 1 + OWN_METRIC_TOLERANCE / 2
    assert not judge([close, close + 0.001, close - 0.001], [1.0, 1.0, 1.0])["own_metric_failure"]
    # worse on average, but one seed better: the paired interval includes 0
    assert not judge([1.2, 1.2, 0.95], [1.0, 1.0, 1.0])["own_metric_failure"]
    assert not judge([0.9, 0.91, 0.92], [1.0, 1.0, 1.0])["own_metric_failure"]  # best
    assert judge([1.05], [1.0])["own_metric_failure"]  # one seed: the tolerance alone
    # two seeds, worse beyond the tolerance on both: the t interval (t = 12.7) would excuse it
    assert judge([1.1, 2.6], [1.0, 1.0])["own_metric_failure"]
    assert not judge([1.1, 1.01], [1.0, 1.0])["own_metric_failure"]


def test_likelihoods_are_compared_in_nats() -> None:
    # NLLs below 0: a relative margin would be meaningless; +0.03 nats per element is 3% of scale
    worse = judge([-1.97, -1.97, -1.97], [-2.0, -2.0, -2.0], "gaussian:scale=calibrated")
    assert worse["own_metric_failure"] and worse["own_metric_margin"] == pytest.approx(0.03)
    near = judge([-1.99, -1.99, -1.99], [-2.0, -2.0, -2.0], "gaussian:scale=calibrated")
    assert not near["own_metric_failure"]


# --- the store -------------------------------------------------------------------------------------


def test_store_round_trip_and_stale_values_dropped_on_record(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.plan([("a", '{"run": 0}', 0, "runs/a"), ("b", '{"run": 1}', 1, "runs/b")])
        store.add_own_metrics({("a", "lp:p=1"): ("1:2", 0.5), ("b", "lp:p=1"): ("3:4", float("inf"))})
        store.set_health({"a": {"under_trained": True, "own_metric_margin": 0.1}, "b": {}})
    with Store(tmp_path, create=False) as store:
        assert store.own_metrics() == {("a", "lp:p=1"): ("1:2", 0.5), ("b", "lp:p=1"): ("3:4", None)}
        assert store.health() == {"a": {"under_trained": True, "own_metric_margin": 0.1}, "b": {}}
        store.set_health({"b": {"unstable": False}})  # replaces every row
        assert store.health() == {"b": {"unstable": False}}
        store.record([Outcome("b", "done", {"recon_l1": 1.0})])  # b trained again: its values are stale
        assert store.own_metrics() == {("a", "lp:p=1"): ("1:2", 0.5)} and store.health() == {}


def test_a_store_written_before_the_health_tables_opens(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "study.sqlite")
    connection.executescript(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, position INTEGER NOT NULL, "
        "status TEXT NOT NULL, metrics TEXT, error TEXT, run_dir TEXT NOT NULL, started_at REAL, "
        "finished_at REAL, seconds REAL, attempts INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
        """INSERT INTO runs VALUES ('a', '{"loss": "l1"}', 0, 'done', '{"recon_l1": 1}', '', 'runs/a',"""
        " 0, 1, 1, 1);"
    )
    connection.close()
    assert update_health(tmp_path) == {"a": {}}  # no run folder: nothing to judge, nothing broken
    with Store(tmp_path, create=False) as store:
        assert store.rows()[0].metrics == {"recon_l1": 1} and store.health() == {"a": {}}
    connection = sqlite3.connect(tmp_path / "study.sqlite")  # a cache of an older layout
    connection.executescript("DROP TABLE own_metric; CREATE TABLE own_metric (run_id TEXT, value REAL);")
    connection.close()
    with Store(tmp_path, create=False) as store:
        store.add_own_metrics({("a", "lp:p=1"): ("1:2", 0.5)})
        assert store.own_metrics() == {("a", "lp:p=1"): ("1:2", 0.5)}


# --- a tiny study with a deliberately bad run ----------------------------------------------------

GRID = """
name = "health"
seeds = [0, 1]
criteria = ["l1", "l2", "huber"]
data = ["synthetic:n=200,dim=8,noise=gaussian,scale=0.3"]
[[models]]
hidden = [16]
latent = 2
[train]
epochs = 15
lr = 0.02
checkpoint_every = 0
"""


@pytest.fixture(scope="module")
def sabotaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study, then huber's runs trained again for 1 epoch into their folders (the store's keys
    still say 15): an optimiser that stopped far too early."""
    out = tmp_path_factory.mktemp("health") / "study"
    run_study(parse_grid(GRID, "health.toml"), out, report=False)
    with Store(out, create=False) as store:
        for row in store.rows():
            if row.spec["loss"] == "huber":
                seed = row.spec["train"]["seed"]
                spec = RunSpec(
                    data=row.spec["data"],
                    loss="huber",
                    model=ModelSettings(hidden=(16,), latent=2),
                    train=TrainSettings(epochs=1, lr=0.02, seed=seed, checkpoint_every=0),
                )
                train_run(spec, out / row.run_dir, overwrite=True)
    return out


def test_the_bad_run_loses_on_its_own_metric_and_the_good_ones_do_not(sabotaged: Path) -> None:
    with Store(sabotaged, create=False) as store:
        before = {row.run_id: row.spec["loss"] for row in store.rows()}
        assert not any(flags.get("own_metric_failure") for flags in store.health().values())
    flags = update_health(sabotaged)
    failing = {before[run_id] for run_id, found in flags.items() if found.get("own_metric_failure")}
    assert failing == {"huber"}
    huber = next(found for run_id, found in flags.items() if before[run_id] == "huber")
    assert huber["own_metric"] == "huber" and huber["own_metric_margin"] > 0.5
    table = study_table(sabotaged)
    assert set(table.loc[table["own_metric_failure"], "loss"]) == {"huber"}
    assert {"under_trained", "unstable", "own_metric_value", "own_metric_rival"} <= set(table.columns)


def test_the_report_shows_training_health_before_the_verdict(sabotaged: Path) -> None:
    page, markdown = build_report(sabotaged)
    assert page.index('<section id="health">') < page.index('<section id="verdict">')
    health = markdown.split("## Training health")[1].split("\n## ")[0]
    assert "| huber | loses on huber to lp:p=" in health
    assert "2 lose on their own metric" in health
    verdict = markdown.split("## Verdict")[1].split("\n## ")[0]
    assert "[Rests on flagged runs: huber (loses on its own metric" in verdict


def test_learned_values_at_their_bounds_are_degenerate_fits() -> None:
    from lpae.study.degenerate import bounds_hit, degenerate_flags

    assert bounds_hit({"learned_p": 1.3, "learned_df": 4.0, "learned_alpha": 1.0, "learned_scale": 0.2}) == []
    hits = bounds_hit(
        {"learned_p": 0.1003, "learned_alpha": 3.99, "learned_df": 0.1, "learned_scale": 0.00249}
    )
    assert [hit.split()[0] for hit in hits] == ["learned_p", "learned_alpha", "learned_df", "learned_scale"]
    assert bounds_hit({"learned_p": 9.8})[0] == "learned_p 9.8 at its bound 10"
    assert bounds_hit({"learned_p": 0.104}) and not bounds_hit({"learned_p": 0.11})  # within 5% of 0.1
    assert degenerate_flags({"status": "done"}) == {}  # nothing learned, nothing to judge
    assert degenerate_flags({"learned_p": 2.0}) == {"degenerate_fit": False, "degenerate_detail": ""}
    assert degenerate_flags({"learned_p": float("nan")})["degenerate_fit"] is False
