"""The verdict: per data set, in plain words, which criteria win, by how much, and where the
evidence is too weak to tell; plus the known-answer cross-checks on synthetic data.

For each headline metric (clean-signal error, calibrated NLL, reconstruction error, probe
accuracy; whichever the runs have) the leaderboard's best is compared with the runner-up: a
*clear* win when their 95% intervals over seeds do not overlap, "too close to call" otherwise,
with the tied criteria that the best still beats paired by seed (runs of one seed share their
split; the t interval of the per-seed difference excludes 0).

Every statement whose winner or runner-up (and every known-answer check whose named criteria)
rests on runs that the training-health check flagged ends with "[Rests on flagged runs: NAME
(reasons).]" (lpae.study.report.training_health: own-metric failure, under-trained, unstable).

Known answers (REFERENCES.md, docs/study.md):

- Gaussian-noise synthetic data: the learned generalized-normal shape should come out near 2
  (|p - 2| <= 0.5), and the L2 family (the criteria whose energy is r^2 and that are not
  robust: lp:2, lpnorm:2, gaussian) should not lose on clean-signal error (its best is the
  overall best or tied with it).
- Heavy-tailed synthetic data (Student-t, Laplace, Cauchy noise, or gennorm with p < 2): a
  robust criterion (as each criterion declares it, lpae.criteria.describe: lp with p <= 1,
  huber, l1l2, laplace, student_t, barron, cauchy, gennorm) should have the lowest clean-signal
  error, clearly below the L2 family: PASS when the intervals are separated or the paired
  difference is clear, WEAK otherwise.
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
from lpae.study.report.data import StudyData
from lpae.study.report.metric_info import HEADLINE, METRICS
from lpae.study.report.page import Part, Section, heading, para, status_line
from lpae.study.report.stats import Entry, leaderboard, paired_difference, relative_gap, summarize
from lpae.study.report.training_health import flag_notes

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


def paired_beaten(frame: pd.DataFrame, metric: str, entries: list[Entry]) -> list[str]:
    """The tied criteria that the best still beats paired by seed (interval of differences excludes 0)."""
    best, higher = entries[0], METRICS[metric].higher_is_better
    beaten = []
    for other in (e.criterion for e in entries if e.tied):
        diff = paired_difference(frame, metric, best.criterion, other)
        if diff.has_interval and (diff.low > 0 if higher else diff.high < 0):
            beaten.append(other)
    return beaten


def paired_sentence(entries: list[Entry], beaten: list[str]) -> str:
    """For a too-close-to-call leaderboard: which tied criteria the best still beats paired by seed."""
    if not beaten:
        return " Paired by seed (runs with the same seed share their split), it beats none of them either."
    rest = [e.criterion for e in entries if e.tied and e.criterion not in beaten]
    text = (
        f" Paired by seed (runs with the same seed share their split), {entries[0].criterion} beats "
        f"{', '.join(beaten)}: the 95% interval of the per-seed difference excludes 0"
    )
    return text + (f"; {', '.join(rest)} stay too close." if rest else ".")


def metric_sentence(metric: str, entries: list[Entry]) -> tuple[str, str | None]:
    """A sentence on one leaderboard, and the clear winner's name (None when too close to call)."""
    info = METRICS[metric]
    best = entries[0]
    value = f"{best.summary.mean:.4g}"
    if len(entries) == 1:
        return f"{metric} ({info.label}): only {best.criterion} has results ({value}).", None
    runner = entries[1]
    gap = relative_gap(best.summary.mean, runner.summary.mean)
    gap_text = f"{100 * gap:.1f}%" if math.isfinite(gap) else "an unknown margin"
    if not best.summary.has_interval:
        return (
            f"{metric} ({info.label}): {best.criterion} is best ({value}), {gap_text} ahead of "
            f"{runner.criterion}, but with one seed there is no interval: too weak to tell.",
            None,
        )
    tied = [e.criterion for e in entries if e.tied]
    if tied:
        names = ", ".join(tied[:4]) + (f" and {len(tied) - 4} more" if len(tied) > 4 else "")
        return (
            f"{metric} ({info.label}): too close to call. {best.criterion} has the best mean ({value}) "
            f"but its 95% interval overlaps {names}; the lead over {runner.criterion} is {gap_text}.",
            None,
        )
    return (
        f"{metric} ({info.label}): {best.criterion} wins clearly with {value}, {gap_text} "
        f"{'above' if info.higher_is_better else 'below'} the runner-up {runner.criterion} "
        f"({runner.summary.mean:.4g}); the intervals do not overlap.",
        best.criterion,
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
    ok = l2.best or l2.tied
    parts.append(
        status_line(
            "PASS" if ok else "FAIL",
            "pass" if ok else "fail",
            f"L2 family on {metric}: its best, {l2.criterion} ({l2.summary.mean:.4g}), "
            + (
                "is the best or tied with it."
                if ok
                else f"loses to {entries[0].criterion} ({entries[0].summary.mean:.4g}), intervals apart."
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
    separated = not robust.summary.overlaps(l2.summary) and robust.summary.has_interval
    # Runs of one seed share their split: paired by seed, the difference may be clear nonetheless.
    paired = (
        paired_difference(frame, str(metric), robust.criterion, l2.criterion) if "seed" in frame else None
    )
    paired_clear = paired is not None and paired.has_interval and paired.high < 0
    if criterion_family(entries[0].criterion) == "robust" and robust.summary.mean < l2.summary.mean:
        outcome, label = ("pass", "PASS") if separated or paired_clear else ("weak", "WEAK")
        if separated:
            evidence = "; intervals separated)."
        elif paired_clear:
            evidence = "; the intervals overlap, but paired by seed the difference is clear)."
        else:
            evidence = "; intervals overlap, also paired by seed, so the evidence is weak)."
        text = (
            f"robust criteria win on {metric}: {robust.criterion} {robust.summary.mean:.4g} against the "
            f"L2 family's best {l2.criterion} {l2.summary.mean:.4g} ({100 * gap:.1f}% lower" + evidence
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


def rests_on(notes: dict[str, list[str]], names: list[str]) -> str:
    """' Rests on flagged runs: ...' for the named criteria that are flagged (section Training health)."""
    flagged = [f"{name} ({', '.join(notes[name])})" for name in dict.fromkeys(names) if name in notes]
    return f" [Rests on flagged runs: {'; '.join(flagged)}.]" if flagged else ""


def in_short(winners: Counter[str], paired_winners: Counter[str], spoken: int) -> str:
    """The closing line: outright winners first, then winners only paired by seed."""
    if winners:
        name, count = winners.most_common(1)[0]
        text = f"In short: {name} wins {count} of {spoken} headline metrics outright"
    else:
        text = f"In short: no criterion wins any of the {spoken} headline metrics outright"
    if paired_winners:
        name, count = paired_winners.most_common(1)[0]
        return text + (
            f"; paired by seed, {name} beats every other criterion on {count} more (weaker "
            "evidence: many criteria are compared, with no correction for that)."
        )
    return text + ("." if winners else "; the evidence is too weak to tell them apart.")


def verdict_section(study: StudyData) -> Section:
    section = Section("verdict", "Verdict")
    if study.main.empty:
        section.add(para("No finished runs yet: nothing to judge."))
        return section
    for title, frame in study.groups(study.main):
        section.add(heading(title))
        notes = flag_notes(frame)  # criteria resting on flagged runs (section Training health)
        winners: Counter[str] = Counter()
        paired_winners: Counter[str] = Counter()  # best of all, paired by seed, but not outright
        spoken = 0
        for metric in HEADLINE:
            entries = leaderboard(frame, metric, METRICS[metric].higher_is_better)
            if not entries:
                continue
            sentence, winner = metric_sentence(metric, entries)
            tied = [e for e in entries if e.tied]
            if entries[0].summary.has_interval and tied and "seed" in frame:
                beaten = paired_beaten(frame, metric, entries)
                sentence += paired_sentence(entries, beaten)
                if len(beaten) == len(tied):
                    paired_winners[entries[0].criterion] += 1
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
            named = [name for name, _ in (*winners.most_common(1), *paired_winners.most_common(1))]
            section.add(para(in_short(winners, paired_winners, spoken) + rests_on(notes, named)))
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
