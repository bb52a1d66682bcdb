"""The verdict: per data set, in plain words, which criteria win, by how much, and where the
evidence is too weak to tell; plus the known-answer cross-checks on synthetic data.

For each headline metric (clean-signal error, calibrated NLL, reconstruction error, probe
accuracy; whichever the runs have) the best mean against every rival by the one rule of the
report (lpae.study.report.answer.judge_within): paired by seed (runs of one seed share their
split), a paired t-test per rival, Holm-corrected for the number of rivals; the best *wins* when
every corrected p is below 5%, otherwise the sentence names the criteria the data cannot tell it
from. The closing "In short" line counts wins by the same rule.

Every statement whose winner or runner-up (and every known-answer check whose named criteria)
rests on runs that the training-health check flagged ends with "[Rests on flagged runs: NAME
(reasons).]" (lpae.study.report.training_health: own-metric failure, under-trained, unstable).

Known answers (REFERENCES.md, docs/study.md):

- Gaussian-noise synthetic data: the learned generalized-normal shape should come out near 2
  (|p - 2| <= 0.5), and the L2 family (the criteria whose energy is r^2 and that are not
  robust: lp:2, lpnorm:2, gaussian) should not lose on clean-signal error (its best is the
  overall best or one the data cannot tell from it, by the rule above).
- Heavy-tailed synthetic data (Student-t, Laplace, Cauchy noise, or gennorm with p < 2): a
  robust criterion (as each criterion declares it, lpae.criteria.describe: lp with p <= 1,
  huber, l1l2, laplace, student_t, barron, barron_nll, cauchy, gennorm) should have the lowest clean-signal
  error and beat the L2 family: PASS when the robust best beats the L2 family's best in a paired
  t-test at 5% (one comparison, no correction), WEAK when it is lower but not significantly.
  These lines compare families and never say that a criterion "wins", so they cannot contradict
  the metric sentences.
- A user's file with a clean reference and a declared noise (``clean=PATH,noise=gaussian``, or
  a heavy family; lpae.data.clean) gets the same checks as synthetic data of that noise.
"""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd

from lpae.criteria import describe
from lpae.data import DATASETS, is_file_spec
from lpae.data.files import file_options
from lpae.spec import parse
from lpae.study.report.answer import ALPHA, at_most, judge_within, p_text
from lpae.study.report.data import StudyData
from lpae.study.report.metric_info import HEADLINE, METRICS
from lpae.study.report.page import Part, Section, heading, para, status_line
from lpae.study.report.stats import Entry, leaderboard, paired_p, relative_gap, seed_table, summarize
from lpae.study.report.training_health import flag_notes, rests_on

HEAVY_NOISE = {"student_t", "laplace", "cauchy"}
SHAPE_TOLERANCE = 0.5


def criterion_family(spec: str) -> str:
    """'robust', 'l2' (energy r^2 and not robust: lp:2, gaussian), or 'other' (also a criterion
    this version does not know, from a store written by another)."""
    try:
        tags = describe(spec)
    except ValueError:
        return "other"
    if tags.robust:
        return "robust"
    return "l2" if tags.energy == 2 else "other"


def noise_of(data_spec: str) -> tuple[str, dict[str, str]] | None:
    """The synthetic noise family and its arguments, or the noise declared for a user's file with
    a clean reference (``clean=PATH,noise=FAMILY``, lpae.data.clean); None for data without known
    noise."""
    if is_file_spec(data_spec):
        try:
            options = file_options(data_spec)[1]
        except ValueError:
            return None
        noise = options.get("noise")
        return None if noise is None or "clean" not in options else (noise, {})
    try:
        entry, resolved = DATASETS.resolve(data_spec)
        name, values = entry.name, {k: str(v) for k, v in resolved.items()}
    except ValueError:
        parsed = parse(data_spec)
        name, values = parsed.name, dict(parsed.kwargs)
    if name != "synthetic" or "noise" not in values:
        return None
    return values["noise"], values


def is_heavy(noise: str, values: dict[str, str]) -> bool:
    if noise in HEAVY_NOISE:
        return True
    if noise == "gennorm":
        try:
            return float(values.get("p", "2")) < 2
        except ValueError:
            return False
    return False


def metric_sentence(frame: pd.DataFrame, metric: str, entries: list[Entry]) -> tuple[str, str | None]:
    """A sentence on one leaderboard, and the winner's name (None when the data cannot tell):
    lpae.study.report.answer's rule, Holm-corrected paired tests of the best against every rival."""
    info = METRICS[metric]
    best = entries[0]
    value = f"{best.summary.mean:.4g}"
    if len(entries) == 1:
        return f"{metric} ({info.label}): only {best.criterion} has results ({value}).", None
    runner = entries[1]
    gap = relative_gap(best.summary.mean, runner.summary.mean)
    gap_text = f"{100 * gap:.1f}%" if math.isfinite(gap) else "an unknown margin"
    judged = judge_within(frame, metric) if "seed" in frame else None
    if judged is None or judged.n_seeds < 2:
        return (
            f"{metric} ({info.label}): {best.criterion} is best ({value}), {gap_text} ahead of "
            f"{runner.criterion}, but with one seed nothing can be told.",
            None,
        )
    if judged.wins:
        return (
            f"{metric} ({info.label}): {best.criterion} wins with {value}, {gap_text} "
            f"{'above' if info.higher_is_better else 'below'} the runner-up {runner.criterion} "
            f"({runner.summary.mean:.4g}); paired by seed, Holm-corrected p {at_most(judged.worst_p)} "
            f"against each of {judged.n_rivals} rivals.",
            best.criterion,
        )
    tied = judged.tied
    names = ", ".join(tied[:4]) + (f" and {len(tied) - 4} more" if len(tied) > 4 else "")
    beaten = judged.n_rivals - len(tied)
    return (
        f"{metric} ({info.label}): the data cannot tell {best.criterion} (best mean {value}) from "
        f"{names}; the lead over {runner.criterion} is {gap_text}"
        + (f", and it beats the other {beaten} (paired by seed, Holm-corrected)." if beaten else "."),
        None,
    )


def family_best(entries: list[Entry], family: str) -> Entry | None:
    found = [e for e in entries if criterion_family(e.criterion) == family]
    return found[0] if found else None


def clean_metric(frame: pd.DataFrame) -> str | None:
    for metric in ("clean_l2", "clean_l1"):
        if metric in frame and frame[metric].notna().any():
            return metric
    return None


def gaussian_checks(frame: pd.DataFrame, notes: dict[str, list[str]] | None = None) -> list[Part]:
    notes = notes or {}
    parts: list[Part] = []
    gennorm = frame[frame["criterion"].map(lambda c: parse(c).name == "gennorm")]
    if "learned_p" in gennorm and gennorm["learned_p"].notna().any():
        s = summarize(pd.to_numeric(gennorm["learned_p"], errors="coerce"))
        ok = abs(s.mean - 2) <= SHAPE_TOLERANCE
        learners = [str(c) for c in gennorm.loc[gennorm["learned_p"].notna(), "criterion"]]
        parts.append(
            status_line(
                "PASS" if ok else "FAIL",
                "pass" if ok else "fail",
                f"learned gennorm shape p = {s.mean:.3g} (expected near 2, tolerance {SHAPE_TOLERANCE})."
                + rests_on(notes, learners),
            )
        )
    else:
        parts.append(
            status_line(
                "NOT CHECKED",
                "skip",
                "no run learned a generalized-normal shape (add gennorm:p=learned to the grid).",
            )
        )
    metric = clean_metric(frame)
    entries = leaderboard(frame, metric, False) if metric else []
    l2 = family_best(entries, "l2")
    if not entries or l2 is None:
        parts.append(
            status_line(
                "NOT CHECKED",
                "skip",
                "L2 family on clean-signal error: needs clean_l2 and an lp:2 or gaussian run.",
            )
        )
        return parts
    judged = judge_within(frame, str(metric)) if "seed" in frame else None
    ok = l2.best or judged is None or l2.criterion in judged.tied
    parts.append(
        status_line(
            "PASS" if ok else "FAIL",
            "pass" if ok else "fail",
            f"L2 family on {metric}: its best, {l2.criterion} ({l2.summary.mean:.4g}), "
            + (
                "is the best or cannot be told from it (the rule of the sentences above)."
                if ok
                else f"loses to {entries[0].criterion} ({entries[0].summary.mean:.4g}), paired by seed "
                "after Holm's correction."
            )
            + rests_on(notes, [l2.criterion, entries[0].criterion]),
        )
    )
    return parts


def heavy_checks(frame: pd.DataFrame, notes: dict[str, list[str]] | None = None) -> list[Part]:
    notes = notes or {}
    metric = clean_metric(frame)
    entries = leaderboard(frame, metric, False) if metric else []
    robust, l2 = family_best(entries, "robust"), family_best(entries, "l2")
    if not entries or robust is None or l2 is None:
        return [
            status_line(
                "NOT CHECKED",
                "skip",
                "robust vs L2 on clean-signal error: needs clean_l2, a robust criterion and lp:2 "
                "or gaussian.",
            )
        ]
    gap = relative_gap(robust.summary.mean, l2.summary.mean)
    # One comparison, robust family's best against the L2 family's, paired by seed (runs of one
    # seed share their split): no correction for multiplicity is needed.
    table = seed_table(frame, str(metric)) if "seed" in frame else pd.DataFrame()
    p_value = paired_p(table, robust.criterion, l2.criterion)
    if criterion_family(entries[0].criterion) == "robust" and robust.summary.mean < l2.summary.mean:
        clear = p_value < ALPHA
        outcome, label = ("pass", "PASS") if clear else ("weak", "WEAK")
        evidence = f"; paired by seed, {p_text(p_value)}" + (")." if clear else ": weak).")
        text = (
            f"robust criteria beat the L2 family on {metric}: {robust.criterion} {robust.summary.mean:.4g} "
            f"against the L2 family's best {l2.criterion} {l2.summary.mean:.4g} ({100 * gap:.1f}% lower"
            + evidence
        )
    else:
        outcome, label = "fail", "FAIL"
        top = entries[0]
        text = (
            f"on {metric} the best criterion is {top.criterion} ({top.summary.mean:.4g}), not a robust one; "
            f"best robust: {robust.criterion} {robust.summary.mean:.4g}."
        )
    text += rests_on(notes, [robust.criterion, l2.criterion, entries[0].criterion])
    return [status_line(label, outcome, text)]


def in_short(winners: Counter[str], spoken: int) -> str:
    """The closing line, by the same rule as every metric sentence."""
    if winners:
        name, count = winners.most_common(1)[0]
        return f"In short: {name} wins {count} of {spoken} headline metrics."
    return (
        f"In short: no criterion wins any of the {spoken} headline metrics; the data cannot tell them apart."
    )


def verdict_section(study: StudyData) -> Section:
    section = Section("verdict", "Verdict")
    if study.main.empty:
        section.add(para("No finished runs yet: nothing to judge."))
        return section
    for title, frame in study.groups(study.main):
        section.add(heading(title))
        notes = flag_notes(frame)  # criteria resting on flagged runs (section Training health)
        winners: Counter[str] = Counter()
        spoken = 0
        for metric in HEADLINE:
            entries = leaderboard(frame, metric, METRICS[metric].higher_is_better)
            if not entries:
                continue
            sentence, winner = metric_sentence(frame, metric, entries)
            sentence += rests_on(notes, [e.criterion for e in entries[:2]])
            section.add(para(sentence))
            spoken += 1
            if winner:
                winners[winner] += 1
        if spoken == 0:
            section.add(
                para(
                    "No headline metric (clean error, NLL, reconstruction error, probe accuracy) "
                    "in these runs."
                )
            )
        else:
            named = [name for name, _ in winners.most_common(1)]
            section.add(para(in_short(winners, spoken) + rests_on(notes, named)))
        noise = noise_of(str(frame["data"].iloc[0]))
        if noise is not None:
            family, values = noise
            if family == "gaussian":
                section.add(para("Known-answer checks (Gaussian noise):"))
                for part in gaussian_checks(frame, notes):
                    section.add(part)
            elif is_heavy(family, values):
                section.add(para(f"Known-answer checks (heavy-tailed {family} noise):"))
                for part in heavy_checks(frame, notes):
                    section.add(part)
    return section
