"""The study report: statistics against scipy, sections built from whatever metrics exist, the
verdict and its known-answer checks, escaping, embedded images, and a real headless browser."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from lpae.study import Store, parse_grid, run_study
from lpae.study.health import update_health
from lpae.study.report import SECTIONS, build_report, write_report
from lpae.study.report.answer import answer_section
from lpae.study.report.data import load_study
from lpae.study.report.page import render_markdown
from lpae.study.report.stats import leaderboard, paired_p, seed_table, summarize
from lpae.study.report.training_health import health_section
from lpae.study.report.verdict import verdict_section
from lpae.study.store import Outcome

SEEDS = (0, 1, 2)
GAUSSIAN = "synthetic:noise=gaussian"
HEAVY = "synthetic:noise=student_t,df=2"
EVIL = "<script>alert(1)</script>.csv"


def spec(
    data: str, loss: str, seed: int, contaminate: float = 0.0, normal: list[int] | None = None
) -> dict[str, Any]:
    return {
        "data": data,
        "loss": loss,
        "model": {"model": "ae", "arch": "mlp", "hidden": [16], "latent": 4},
        "train": {"seed": seed, "epochs": 2},
        "split_seed": seed,
        "contaminate": contaminate,
        "normal_classes": normal,
    }


def fabricate(out: Path, runs: list[tuple[dict[str, Any], str, dict[str, Any], str]]) -> Path:
    """A study folder whose store holds the given (spec, status, metrics, error) rows; no run folders."""
    out.mkdir(parents=True, exist_ok=True)
    with Store(out) as store:
        store.set_meta({"name": "fabricated <study>"})
        planned = [
            (f"r{i}", json.dumps(s, sort_keys=True), i, f"runs/r{i}") for i, (s, *_) in enumerate(runs)
        ]
        store.plan(planned)
        store.record(
            Outcome(f"r{i}", status, metrics, error, 0.0, 1.0)
            for i, (_, status, metrics, error) in enumerate(runs)
            if status != "pending"
        )
    return out


def jitter(seed: int) -> float:
    return 0.002 * (seed - 1)  # -0.002, 0, 0.002: tight intervals


def rich_runs(heavy_winner: str = "lp:p=1") -> list[tuple[dict[str, Any], str, dict[str, Any], str]]:
    runs: list[tuple[dict[str, Any], str, dict[str, Any], str]] = []
    clean = {
        GAUSSIAN: {"lp:p=1": 0.13, "lp:p=2": 0.10, "gennorm:p=learned": 0.101},
        HEAVY: {"lp:p=1": 0.20, "lp:p=2": 0.40, "gennorm:p=learned": 0.22},
    }
    if heavy_winner == "lp:p=2":
        clean[HEAVY] = {"lp:p=1": 0.40, "lp:p=2": 0.20, "gennorm:p=learned": 0.42}
    for data, by_loss in clean.items():
        for loss, value in by_loss.items():
            for seed in SEEDS:
                for level in (0.0, 0.05, 0.2):
                    metrics = {
                        "clean_l2": value * (1 + 2 * level) + jitter(seed),
                        "clean_l1": 0.8 * value + jitter(seed),
                        "recon_l1": 0.5 + jitter(seed),
                        "recon_l2": 0.7 + jitter(seed) + (0.01 if loss == "lp:p=1" else 0),
                        "recon_l0.5": 0.3 + jitter(seed),
                        "nll_gennorm_bpd": 1.5 + jitter(seed),
                        "residual_gennorm_p": 2.0 if data == GAUSSIAN else 1.2,
                        "knn_acc_l2": 0.9 + jitter(seed),
                        "probe_acc": 0.85 + jitter(seed),
                        "raw_knn_acc_l2": 0.8,
                        "raw_probe_acc": 0.8,
                    }
                    if loss.startswith("gennorm"):
                        metrics["learned_p"] = (2.1 if data == GAUSSIAN else 1.3) + jitter(seed)
                    runs.append((spec(data, loss, seed, level), "done", metrics, ""))
    for loss in ("lp:p=1", "lp:p=2"):
        for seed in SEEDS:
            auroc = {
                "anomaly_auroc": 0.9 if loss == "lp:p=1" else 0.8,
                "anomaly_auprc": 0.5,
                "anomaly_auprc_nll": 0.6 if loss == "lp:p=1" else 0.4,
                "anomaly_base_rate": 0.25,
            }
            runs.append((spec(GAUSSIAN, loss, seed, 0.0, [0]), "done", auroc, ""))
    runs.append((spec(EVIL, "lp:p=2", 0), "done", {"recon_l2": 1.0}, ""))
    runs.append((spec(EVIL, "lp:p=1", 0), "failed", {}, "ValueError: bad <b>file</b>"))
    runs.append((spec(EVIL, "lp:p=1", 1), "diverged", {"status": "diverged"}, "non-finite loss"))
    runs.append((spec(EVIL, "lp:p=1", 2), "pending", {}, ""))
    broken = {"recon_l2": float("nan"), "nonfinite_outputs": 64}  # trained, but its decoder emits NaN
    runs.append((spec(EVIL, "lp:p=0.5", 0), "done", broken, ""))
    return runs


def img_sources(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', page)


# --- statistics ------------------------------------------------------------------------------------


def test_summary_is_the_t_interval_of_scipy() -> None:
    values = np.array([0.31, 0.35, 0.30, 0.38])
    s = summarize(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (s.n, s.mean) == (4, pytest.approx(values.mean()))
    assert (s.low, s.high) == (pytest.approx(low), pytest.approx(high))
    one = summarize(np.array([0.5, np.nan]))
    assert one.n == 1 and not one.has_interval and one.low == one.high == 0.5
    assert summarize(np.array([])).n == 0


def test_paired_p_is_scipys_paired_t_test_by_seed() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(1.0, 0.3, 5), rng.normal(1.2, 0.3, 5)
    frame = pd.DataFrame(
        {"criterion": ["a"] * 5 + ["b"] * 5, "seed": [*range(5), *range(5)], "m": [*a, *b]}
    ).sample(frac=1, random_state=0)  # row order must not matter: pairing is by seed
    table = seed_table(frame, "m")
    assert paired_p(table, "a", "b") == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    assert math.isnan(paired_p(seed_table(frame[frame["seed"] == 0], "m"), "a", "b"))
    constant = pd.DataFrame({"criterion": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "m": [1, 2, 2, 3]})
    assert paired_p(seed_table(constant, "m"), "a", "b") == 0.0  # the same gap on every seed


def test_leaderboard_marks_best_and_ties_in_the_metric_direction() -> None:
    frame = pd.DataFrame(
        {
            "criterion": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "err": [1.0, 1.1, 0.9, 1.05, 1.2, 0.95, 5.0, 5.1, 4.9],
        }
    )
    lower = leaderboard(frame, "err", higher_is_better=False)
    assert [(e.criterion, e.best, e.tied) for e in lower] == [
        ("a", True, False),
        ("b", False, True),
        ("c", False, False),
    ]
    higher = leaderboard(frame, "err", higher_is_better=True)
    assert higher[0].criterion == "c" and higher[0].best and not higher[1].tied
    assert leaderboard(frame, "missing", False) == []


# --- the report ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rich_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = fabricate(tmp_path_factory.mktemp("report") / "rich", rich_runs())
    write_report(out)
    return out


def test_report_has_every_section_the_metrics_allow(rich_study: Path) -> None:
    page = (rich_study / "report.html").read_text()
    for anchor in (
        "verdict",
        "leaderboards",
        "cross-metric",
        "shapes",
        "likelihood",
        "latent",
        "anomaly",
        "robustness",
        "problems",
    ):
        assert f'<section id="{anchor}">' in page, anchor
    assert "mutual information" in page and "Vincent et al. 2010" in page
    # No history.csv and no run folders here: those sections are skipped, not broken.
    assert '<section id="convergence">' not in page and '<section id="reconstructions">' not in page
    assert "Left out for lack of data" in page and "convergence" in page
    markdown = (rich_study / "report.md").read_text()
    assert markdown.startswith("# lpae study: fabricated &lt;study&gt;") and "## Verdict" in markdown
    anomaly = markdown.split("## Anomaly detection")[1].split("\n## ")[0]
    assert "anomaly_auprc_nll" in anomaly and "Anomalies are 25.0% of the test rows" in anomaly
    problems = markdown.split("## Diverged and failed runs")[1]
    assert "decoders emit NaN or infinite values" in problems and "| 64 |" in problems


def test_problem_tables_list_at_most_their_cap_and_say_how_many(tmp_path: Path) -> None:
    from lpae.study.report import PROBLEM_ROWS

    n_failed = PROBLEM_ROWS + 5
    runs = [
        (spec(GAUSSIAN, "lp:p=2", seed), "failed", {}, f"error of seed {seed}") for seed in range(n_failed)
    ]
    runs.append((spec(GAUSSIAN, "lp:p=1", 0), "done", {"recon_l2": 0.1}, ""))
    out = fabricate(tmp_path / "many", runs)
    _, markdown = build_report(out)
    problems = markdown.split("## Diverged and failed runs")[1]
    listed = re.findall(r"error of seed (\d+)", problems)
    assert listed == [str(seed) for seed in range(PROBLEM_ROWS)]
    assert f"The first {PROBLEM_ROWS} of {n_failed} runs are listed" in problems
    few = fabricate(tmp_path / "few", runs[:3] + runs[-1:])
    assert "runs are listed" not in build_report(few)[1]


def test_verdict_cross_checks_the_known_answers(rich_study: Path) -> None:
    markdown = (rich_study / "report.md").read_text()
    verdict = markdown.split("## Verdict")[1].split("\n## ")[0]
    gaussian = verdict.split(f"### {GAUSSIAN}")[1].split("### ")[0]
    heavy = verdict.split(f"### {HEAVY}")[1].split("### ")[0]
    assert "**PASS** learned gennorm shape p = 2.1" in gaussian
    assert "**PASS** L2 family on clean_l2: its best, lp:p=2" in gaussian
    # report.md escapes "<" (text from user input may hold markup), so p < 0.001 reads p &lt; 0.001 there
    assert "**PASS** robust criteria beat the L2 family on clean_l2: lp:p=1 0.2" in heavy
    assert (
        "50.0% lower; paired by seed, p &lt; 0.001" in heavy
    )  # report.md escapes < (text from user input may hold markup)
    assert "clean_l2 (root mean squared error against the clean signal): lp:p=1 wins with 0.2" in heavy
    # gennorm and lp:2 differ by 1% with overlapping intervals on the Gaussian set, but every seed puts
    # lp:2 0.001 below gennorm: paired by seed, with Holm's correction, that difference is clear.
    assert (
        "clean_l2 (root mean squared error against the clean signal): lp:p=2 wins with 0.1, 1.0% below "
        "the runner-up gennorm:p=learned (0.101); paired by seed, Holm-corrected p &lt; 0.001 against each "
        "of 2 rivals." in gaussian
    )
    # Equal means: the data cannot tell; the summary counts wins by the same rule.
    assert "recon_l1 (mean absolute error): the data cannot tell lp:p=1 (best mean 0.5) from" in gaussian
    assert "In short: lp:p=2 wins 2 of 6 headline metrics." in gaussian
    assert "In short: lp:p=1 wins 2 of 6 headline metrics." in heavy


def test_verdict_reports_a_failed_known_answer(tmp_path: Path) -> None:
    out = fabricate(tmp_path / "wrong", rich_runs(heavy_winner="lp:p=2"))
    _, markdown = build_report(out)
    heavy = markdown.split(f"### {HEAVY}")[1].split("### ")[0]
    assert "**FAIL** on clean_l2 the best criterion is lp:p=2" in heavy


def test_health_comes_first_and_the_verdict_marks_what_rests_on_flagged_runs(tmp_path: Path) -> None:
    """lp:p=1 under-trained on the heavy-tailed set only: named there, and nowhere else."""
    runs = [
        (s, status, {**m, "under_trained": s["data"] == HEAVY and s["loss"] == "lp:p=1"}, e)
        for s, status, m, e in rich_runs()
    ]
    out = fabricate(tmp_path / "flagged", runs)
    update_health(out)
    study = load_study(out)  # the two sections alone: the whole report is built in tests/test_health.py
    markdown = render_markdown("flagged", [], [health_section(study), verdict_section(study)])
    assert markdown.index("## Training health") < markdown.index("## Verdict")
    # Before any winner is named: the answer opens with the health counts, then the section itself.
    assert SECTIONS[:2] == (answer_section, health_section)
    answer = render_markdown("flagged", [], [answer_section(study)])
    assert "Training health first: 9 of " in answer.split("###")[0]
    health = markdown.split("## Training health")[1].split("\n## ")[0]
    assert f"| {HEAVY} | ae mlp 16-4 | all classes, clean | lp:p=1 |  | 3 of 3 |  |" in health
    assert f"| {HEAVY} | ae mlp 16-4 | contaminated 0.05 | lp:p=1 |  | 3 of 3 |  |" in health
    assert "0 lose on their own metric, 9 under-trained, 0 unstable, 0 with a learned shape" in health
    verdict = markdown.split("## Verdict")[1].split("\n## ")[0]
    heavy, gaussian = verdict.split(f"### {HEAVY}")[1].split("### ")[0], verdict.split(f"### {GAUSSIAN}")[1]
    note = "[Rests on flagged runs: lp:p=1 (under-trained).]"
    assert "lp:p=1 wins with" in heavy and heavy.count(note) >= 3  # clean_l2, clean_l1, the PASS line
    assert "**PASS** robust criteria beat the L2 family on clean_l2: lp:p=1" in heavy.split(note)[-2]
    assert "Rests on flagged runs" not in gaussian.split("### ")[0]


def test_heavy_tailed_check_passes_on_a_clear_paired_difference(tmp_path: Path) -> None:
    """Seed-to-seed spread shared by both criteria: intervals overlap, the per-seed gap does not."""
    runs = [
        (spec(HEAVY, loss, seed), "done", {"clean_l2": base + 0.1 * seed + 0.001 * seed**2}, "")
        for loss, base in (("lp:p=1", 0.20), ("lp:p=2", 0.22))
        for seed in SEEDS
    ]
    _, markdown = build_report(fabricate(tmp_path / "paired", runs))
    heavy = markdown.split(f"### {HEAVY}")[1]
    assert "**PASS** robust criteria beat the L2 family on clean_l2: lp:p=1" in heavy
    assert "paired by seed, p &lt; 0.001)." in heavy  # the same gap on every seed
    noisy = [
        (
            s,
            status,
            {"clean_l2": m["clean_l2"] + (0.03 if s["loss"] == "lp:p=1" and s["train"]["seed"] == 2 else 0)},
            e,
        )
        for s, status, m, e in runs
    ]
    _, markdown = build_report(fabricate(tmp_path / "unpaired", noisy))
    assert "**WEAK** robust criteria beat the L2 family" in markdown and ": weak)." in markdown


def test_data_derived_text_is_escaped(rich_study: Path) -> None:
    page = (rich_study / "report.html").read_text()
    assert "<script" not in page and "<b>file" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in page and "bad &lt;b&gt;file&lt;/b&gt;" in page
    assert "fabricated &lt;study&gt;" in page
    markdown = (rich_study / "report.md").read_text()  # Markdown passes raw HTML through: escaped too
    assert "<script" not in markdown and "<b>file" not in markdown and "<study>" not in markdown
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in markdown and "bad &lt;b&gt;file&lt;/b&gt;" in markdown
    )


def test_images_are_embedded_pngs_and_nothing_is_fetched(rich_study: Path) -> None:
    page = (rich_study / "report.html").read_text()
    sources = img_sources(page)
    assert len(sources) >= 6
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as image:
            assert image.format == "PNG" and image.width > 0 and image.height > 0
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "http://" not in page and "https://" not in page


def test_sparse_and_empty_studies_still_report(tmp_path: Path) -> None:
    sparse = fabricate(
        tmp_path / "sparse", [(spec("digits", "lp:p=1", s), "done", {"recon_l1": 0.5 + s}, "") for s in SEEDS]
    )
    page, markdown = build_report(sparse)
    assert '<section id="verdict">' in page and '<section id="shapes">' not in page
    assert "recon_l1 (mean absolute error): only lp:p=1 has results" in markdown
    empty = fabricate(tmp_path / "empty", [(spec("digits", "lp:p=1", 0), "pending", {}, "")])
    page, markdown = build_report(empty)
    assert "No finished runs yet" in markdown and "0 done" in markdown


def test_report_of_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a study folder"):
        write_report(tmp_path / "nothing")


# --- a real browser ---------------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TRAINED = """
name = "browser"
seeds = [0, 1]
criteria = ["l1", "l2"]
data = ["digits"]
[[models]]
hidden = [16]
latent = 4
[train]
epochs = 3
checkpoint_every = 0
"""


def browser() -> Any:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
    if not (Path(CHROMIUM).is_file() and shutil.which(CHROMEDRIVER)):
        pytest.skip("headless Chromium is absent (apt-get install chromium chromium-driver; CI installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(service=service, options=options)


@pytest.mark.slow
def test_reports_open_cleanly_in_headless_chromium(rich_study: Path, tmp_path: Path) -> None:
    trained = tmp_path / "trained"
    run_study(parse_grid(TRAINED, "browser.toml"), trained, threads=1)  # real runs: curves, reconstructions
    driver = browser()
    try:
        for out, min_images in ((rich_study, 6), (trained, 3)):
            driver.get((out / "report.html").resolve().as_uri())
            widths = driver.execute_script(
                "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : -1)"
            )
            assert len(widths) >= min_images and all(w > 0 for w in widths), widths
            verdict = driver.execute_script(
                "const v = document.getElementById('verdict'); return v && v.innerText"
            )
            assert verdict and "Verdict" in verdict
            # The answer comes first: one sentence across data sets and one per data set.
            first = driver.execute_script("return document.querySelector('section').id")
            answer = driver.execute_script("return document.getElementById('answer').innerText")
            assert first == "answer" and answer.index("Training health first") < answer.index(
                "Reconstruction"
            )
            titles = {line.split(": ")[0] for line in answer.splitlines() if ": " in line}
            data_sets = [GAUSSIAN, HEAVY] if out == rich_study else ["digits"]
            assert all(name in titles for name in data_sets), answer
            assert out != rich_study or "Across data sets: fewer than 3 data sets" in answer
            errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
            assert errors == []
        trained_page = (trained / "report.html").read_text()
        assert (
            '<section id="convergence">' in trained_page and '<section id="reconstructions">' in trained_page
        )
    finally:
        driver.quit()


def test_known_answer_lines_and_the_summary_use_one_rule(tmp_path: Path) -> None:
    """Two robust criteria tied with each other, both far below L2 on every seed: no criterion wins
    clean_l2 (the summary and the metric sentence say so), and the known-answer line says that the
    robust family beats the L2 family, not that anything wins: the two cannot contradict."""
    runs = [
        (spec(HEAVY, loss, seed), "done", {"clean_l2": base + 0.05 * seed + wobble * (seed - 1)}, "")
        for loss, base, wobble in (("lp:p=1", 0.20, 0.01), ("huber", 0.20, -0.01), ("lp:p=2", 0.30, 0.0))
        for seed in SEEDS
    ]
    _, markdown = build_report(fabricate(tmp_path / "tied", runs))
    heavy = markdown.split("## Verdict")[1].split(f"### {HEAVY}")[1]
    assert "clean_l2 (root mean squared error against the clean signal): the data cannot tell" in heavy
    assert "In short: no criterion wins any of the 1 headline metrics" in heavy
    assert "**PASS** robust criteria beat the L2 family on clean_l2" in heavy
    known = heavy.split("Known-answer checks")[1]
    assert " wins" not in known


def test_fraction_intervals_stay_inside_zero_and_one() -> None:
    near_one = summarize(np.array([0.999, 1.0, 0.997, 1.0]), fraction=True)
    assert 0 < near_one.low <= near_one.mean <= near_one.high < 1
    plain = summarize(np.array([0.999, 1.0, 0.997, 1.0]))
    assert plain.high > 1  # what the plain t interval says, and why fractions need another
    # mid-range, the logit interval is close to the plain one
    mid, mid_plain = (summarize(np.array([0.48, 0.52, 0.50, 0.47]), fraction=f) for f in (True, False))
    assert mid.low == pytest.approx(mid_plain.low, abs=0.005) and mid.high == pytest.approx(
        mid_plain.high, abs=0.005
    )
    entries = leaderboard(
        pd.DataFrame({"criterion": ["a"] * 3, "anomaly_auroc": [1.0, 0.999, 1.0]}), "anomaly_auroc", True
    )
    assert entries[0].summary.high < 1
