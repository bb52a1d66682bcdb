"""The answer at the top of the report: per-data-set Holm-corrected paired tests and the
Friedman / Nemenyi test across data sets (Demsar 2006), on constructed study tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs
from scipy import stats

from lpae.study.report.answer import answer_section, holm, judge_across, judge_within
from lpae.study.report.data import StudyData
from lpae.study.report.page import render_markdown


def study_table(values: dict[tuple[str, str, int], float]) -> pd.DataFrame:
    """A finished study's table with recon_l2 = values[(data, criterion, seed)]."""
    rows = [
        {"data": data, "criterion": criterion, "loss": criterion, "seed": seed, "recon_l2": value}
        for (data, criterion, seed), value in values.items()
    ]
    frame = pd.DataFrame(rows)
    return frame.assign(status="done", model_label="ae mlp 8", normal_classes="", contaminate=0.0)


def ordered(n_data: int, n_seeds: int = 5, gap: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """A < B < C on every seed of every data set, by ``gap`` each, with a little noise."""
    rng = np.random.default_rng(seed)
    values = {}
    for d in range(n_data):
        for s in range(n_seeds):
            base = 1.0 + rng.normal(0, 0.05)  # the seed's split: shared by every criterion
            for rank, criterion in enumerate(("A", "B", "C")):
                values[(f"set{d}", criterion, s)] = base + rank * gap + rng.normal(0, 0.002)
    return study_table(values)


def groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(str(name), rows) for name, rows in frame.groupby("data", sort=False)]


def test_a_criterion_better_on_every_seed_wins_within_each_data_set() -> None:
    frame = ordered(4)
    for _, rows in groups(frame):
        judged = judge_within(rows, "recon_l2")
        assert judged is not None and judged.best == "A" and judged.wins
        assert judged.n_rivals == 2 and judged.n_seeds == 5 and judged.worst_p < 0.05


def test_four_data_sets_friedman_rejects_and_nemenyi_separates_only_the_far_rival() -> None:
    """Ranks A = 1, B = 2, C = 3 on N = 4 data sets: Friedman's chi^2 = 12 / (N k (k + 1)) sum R_j^2
    - 3 N (k + 1) = 8 (p = e^-4); Nemenyi's critical difference q_0.05 sqrt(k (k + 1) / (6 N)) =
    2.343 x 0.707 = 1.66 ranks separates A from C (2 ranks) but not from B (1 rank)."""
    judged = judge_across(groups(ordered(4)), "recon_l2")
    assert judged is not None
    assert judged.friedman_p == pytest.approx(math.exp(-4), rel=1e-9)
    assert list(judged.average.index) == ["A", "B", "C"]
    assert judged.top == ["A", "B"]
    assert judged.nemenyi is not None and judged.nemenyi.loc["A", "C"] < 0.05 <= judged.nemenyi.loc["A", "B"]


def test_twelve_data_sets_make_a_winner_across_data_sets() -> None:
    """N = 12: the critical difference falls to 2.343 sqrt(12 / 72) = 0.96 ranks, below B's 1."""
    judged = judge_across(groups(ordered(12)), "recon_l2")
    assert judged is not None and judged.top == ["A"]
    text = render_markdown("t", [], [answer_section(StudyData(Path("."), "t", ordered(12)))])
    assert "Across 12 data sets: A (average rank 1.00 of 3) wins on recon_l2" in text
    assert "set0: A wins on recon_l2" in text


def test_pure_noise_cannot_be_told_apart() -> None:
    rng = np.random.default_rng(7)
    values = {
        (f"set{d}", criterion, s): 1.0 + rng.normal(0, 0.05)
        for d in range(5)
        for criterion in ("A", "B", "C", "D")
        for s in range(3)
    }
    frame = study_table(values)
    text = render_markdown("t", [], [answer_section(StudyData(Path("."), "t", frame))])
    assert "Across 5 data sets: the data cannot tell the criteria apart on recon_l2" in text
    assert " wins " not in text
    for d in range(5):
        line = next(line for line in text.splitlines() if line.startswith(f"set{d}: "))
        assert "cannot tell" in line or "cannot be told apart" in line, line


def test_holm_keeps_the_family_wise_error_rate_on_noise() -> None:
    """400 data sets of pure noise (4 criteria x 3 seeds): the best is declared better than at least
    one rival in at most about 5% of them (Holm controls the family-wise error rate), and wins
    outright (better than all three) far more rarely."""
    rng = np.random.default_rng(11)
    any_beaten = wins = 0
    for _ in range(400):
        values = {("s", c, s): rng.normal() for c in ("A", "B", "C", "D") for s in range(3)}
        judged = judge_within(study_table(values), "recon_l2")
        assert judged is not None
        any_beaten += len(judged.tied) < judged.n_rivals
        wins += judged.wins
    assert any_beaten <= 0.05 * 400 + 3 * math.sqrt(400 * 0.05 * 0.95), any_beaten
    assert wins <= 4, wins


def test_one_seed_says_nothing_can_be_told() -> None:
    frame = ordered(1, n_seeds=1)
    text = render_markdown("t", [], [answer_section(StudyData(Path("."), "t", frame))])
    assert "set0: cannot tell with one seed" in text


def test_nemenyi_matches_demsars_critical_difference() -> None:
    """Demsar (2006, Table 5a): q_0.05 = 2.569 for k = 4, so with N = 14 data sets CD = 1.25; a rank
    difference just above CD is significant at 5% under scikit-posthocs' Nemenyi, just below is not."""
    k, n = 4, 14
    q = stats.studentized_range.ppf(0.95, k, np.inf) / math.sqrt(2)
    assert q == pytest.approx(2.569, abs=1e-3)
    cd = q * math.sqrt(k * (k + 1) / (6 * n))
    assert cd == pytest.approx(1.25, abs=0.01)
    # Criterion 0 always ranks 1; criterion 3 ranks 4 in ``a`` of the 14 blocks and 2 in the rest,
    # so its average rank is 2 + 2a / 14 and the gap 1 + 2a / 14: 1.29 for a = 2, 1.14 for a = 1.
    for a, significant in ((2, True), (1, False)):
        ranks = np.asarray([[1, 2, 3, 4] if i < a else [1, 3, 4, 2] for i in range(n)], dtype=float)
        gap = ranks[:, 3].mean() - ranks[:, 0].mean()
        p = scikit_posthocs.posthoc_nemenyi_friedman(ranks).iloc[0, 3]
        assert (gap > cd) == significant and (p < 0.05) == significant, (gap, p)


@pytest.mark.parametrize("seed", range(5))
def test_holm_matches_statsmodels(seed: int) -> None:
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(seed).uniform(0, 0.2, size=7)
    p[seed % 7] = p[(seed + 1) % 7]  # a tie
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=1e-12)


def test_the_rank_table_is_coloured_by_rank_in_html() -> None:
    from lpae.study.report.answer import rank_colour
    from lpae.study.report.page import render_html

    assert (rank_colour(1, 3), rank_colour(3, 3)) == ("hsl(120, 70%, 82%)", "hsl(0, 70%, 82%)")
    study = StudyData(Path("."), "t", ordered(4))
    page = render_html("t", [], [answer_section(study)])
    # A ranks first on each of the 4 data sets, and on average
    assert 'class="ranks"' in page and page.count('style="background:hsl(120, 70%, 82%)">1<') == 5
    text = render_markdown("t", [], [answer_section(study)])
    assert (
        "| criterion | set0 | set1 | set2 | set3 | average rank |" in text
        and "| A | 1 | 1 | 1 | 1 | 1 |" in text
    )
