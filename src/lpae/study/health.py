"""Training health of a study: each run's history flags, and the own-metric check across runs.

A comparison of criteria measures the losses only when every criterion was optimised well enough.
``update_health(out)`` judges every finished run of a study folder and writes its flags to the
store's ``health`` table (lpae.study.store); the tidy table (lpae.study.table) and the report's
"Training health" section read them, and the verdict marks what rests on flagged runs.

Per run (lpae.metrics.health, from the validation-loss history): ``under_trained`` (the best
validation loss still fell by more than 10% of its range over the last 20% of epochs) and
``unstable`` (the last validation loss more than 10% of its range above the best); from its
learned values, ``degenerate_fit`` (a learned shape or scale at the bound of its range,
lpae.study.degenerate). Runs trained
by this version carry them in metrics.json; for older runs they are computed from history.csv.

Own-metric check (REFERENCES.md, "Non-convex losses need continuation"): a model trained under a
criterion with an own metric (lpae.criteria.own_metric_spec: the plain loss itself, or a
likelihood's NLL at the ML scale, learned shapes pinned) should be the best or tied on that
metric, on its training rows, among the runs trained on the same data, model and protocol.
The metric is scored as the model's training objective scores it (Autoencoder.objective_pass):
an AE's reconstructions of x; a DAE's reconstructions of a corruption of x (it was trained to
undo the corruption, not to copy x); a VAE's decodings of z ~ q(z|x), plus beta * KL per
element. A VAE minimises reconstruction plus KL, so a VAE of another criterion whose decoder
reconstructs better by paying more KL (a likelihood of small calibrated scale weighs the
reconstruction far above the KL) has not beaten it on its own objective. Measured on the full
preset before this rule: VAE huber runs lost 17-167% on their Huber energy alone.

Why the training rows and not the test split: the check asks whether the optimiser minimised
what it was given, and that is measured on what it was given. On held-out rows a criterion can
lose on its own energy for a reason that is the loss's own property, its statistical efficiency:
under Student-t noise with df = 2 (quick preset) an L2 model's test MSE was 13.9% above Huber's,
because the mean of heavy-tailed noise is a poor estimate of the signal (Huber 1964), and on
Gaussian noise a well-trained lp:0.5 model lost 1.5% on test L0.5 to L2 while tying it on the
training rows. Those are findings of the study (the leaderboards rank test metrics), not
optimisation failures.

- Comparisons: finished runs (no non-finite outputs) grouped by their run key without the
  criterion and the seed (data, model settings, training settings, protocol: contamination,
  one-class classes, preprocessing); within a comparison, the runs of one seed share their split
  and weights' seed, so they are compared paired by seed.
- For criterion c at seed s, its own metric E_cs is own_metric_spec(c, the metrics of c's run at
  seed s); every run of that seed is scored on it (lpae.criteria.own_metric, plus its objective's
  added term) with its objective's reconstructions of the training rows (contaminated as
  trained, under a contamination protocol; the same noise draws for every run)
  in the preprocessed space of c's run (a run preprocessed otherwise, e.g. min-max
  for a unit-interval criterion, is mapped back to original units and into that space).
- The margin of c against a rival c' at seed s: for a plain loss the relative difference
  (E_cs(c) - E_cs(c')) / E_cs(c'); for a likelihood the difference in nats per element (a margin
  d means c's residuals need exp(d) times the rival's scale). Positive: c is worse on its own metric.
- c *loses* to c' when the mean margin over seeds exceeds OWN_METRIC_TOLERANCE = 0.02 (2% of the
  energy, or 0.02 nats per element: about 2% of scale) and, with two seeds or more, either the
  paired 95% t interval of the margins (as in lpae.study.report.stats) lies above 0 or every
  seed's margin exceeds the tolerance (with 2 seeds the t interval, t = 12.7, would excuse
  almost any loss; the same loss on every seed is no chance). Otherwise c is best or tied.
- A criterion that loses to any rival is flagged ``own_metric_failure`` on every run of the
  comparison, with ``own_metric_rival`` the rival with the largest mean margin among those it
  loses to (the largest overall when it loses to none) and ``own_metric_margin`` that mean.

Cost: each run's reconstructions are recomputed from its folder (lpae.runs.load_run; each data
set loaded and split once) on at most OWN_METRIC_ELEMENTS = 500,000 training elements (a seeded
subsample of training rows, the same for every run of a split and protocol); the values are cached
in the store's ``own_metric`` table with the weights file's modification time and size (and the
rows they were computed on: STAMP_ROWS), so that a report recomputes only what is new or was
written again. Timings: docs/study.md.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from lpae.config import RunConfig
from lpae.criteria import describe, own_metric, own_metric_spec
from lpae.data import Dataset, Preprocessor, load
from lpae.metrics import history_health
from lpae.metrics.evaluate import EVAL_BATCH
from lpae.metrics.latent import seeded_subset
from lpae.runs import Run, load_run, prepare_data, read_config
from lpae.study.degenerate import degenerate_flags
from lpae.study.store import Row, Store

OWN_METRIC_TOLERANCE = 0.02
OWN_METRIC_ELEMENTS = 500_000
# Cached values computed otherwise are stale: on the test split (a store of 0.1), or on the
# noiseless pass of training rows without a VAE's KL (STAMP_ROWS "train", before objective passes).
STAMP_ROWS = "objective"
OBJECTIVE_SEED = 0
HISTORY_FLAGS = ("under_trained", "unstable")
REASONS = {
    "own_metric_failure": "loses on its own metric",
    "under_trained": "under-trained",
    "unstable": "unstable",
    "degenerate_fit": "fit at a bound",
}
# What a user can change for each reason (the report's health table).
REMEDIES = {
    "own_metric_failure": "more epochs; for a non-convex criterion a longer --continuation or a larger eps",
    "under_trained": "more epochs, or a higher --lr with --schedule cosine",
    "unstable": "a lower --lr, or --clip",
    "degenerate_fit": "fix the shape, or learn it through a likelihood (barron_nll, not the plain "
    "barron loss, whose rho grows with alpha); on quantized data, dequantize",
}


@dataclass(frozen=True)
class Member:
    """A finished run in a comparison."""

    row: Row
    comparison: str  # the run key without criterion and seed
    seed: int
    criterion: str
    own_spec: str | None  # its own metric, or None


def comparison_key(spec: dict[str, Any]) -> str:
    """The run key without the criterion and the seeds: runs that differ only in those compare."""
    rest = {name: value for name, value in spec.items() if name not in ("loss", "split_seed")}
    rest["train"] = {name: value for name, value in dict(spec.get("train") or {}).items() if name != "seed"}
    return json.dumps(rest, sort_keys=True)


def members_of(rows: Iterable[Row]) -> list[Member]:
    members = []
    for row in rows:
        if row.status != "done" or row.metrics.get("nonfinite_outputs"):
            continue
        spec = row.spec
        criterion = str(spec.get("loss"))
        try:
            own = own_metric_spec(criterion, row.metrics)
        except ValueError:  # a criterion this version does not know (a store written by another)
            own = None
        seed = int(dict(spec.get("train") or {}).get("seed", 0))
        members.append(Member(row, comparison_key(spec), seed, criterion, own))
    return members


def wanted_values(members: list[Member]) -> dict[tuple[str, str], str]:
    """(run_id, own-metric spec) -> the run_id whose preprocessing space the value is computed in."""
    by_seed: dict[tuple[str, int], list[Member]] = defaultdict(list)
    for member in members:
        by_seed[(member.comparison, member.seed)].append(member)
    wanted = {}
    for group in by_seed.values():
        if len(group) < 2:
            continue
        for owner in group:
            if owner.own_spec is not None:
                for member in group:
                    wanted[(member.row.run_id, owner.own_spec)] = owner.row.run_id
    return wanted


class RunResiduals:
    """Each run's residuals on its training rows, recomputed from its folder; data sets and
    training rows (contamination included) computed once per split and protocol.

    At most OWN_METRIC_ELEMENTS residual elements per run: a seeded subsample of the training rows
    (lpae.metrics.latent.seeded_subset), the same rows for every run of a split and protocol, so
    that the comparison stays paired (MNIST's 49,000 training images x 784 pixels become 637).
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.datasets: dict[tuple[Any, ...], Dataset] = {}
        self.train_rows: dict[tuple[Any, ...], np.ndarray] = {}

    def train_data(self, config: RunConfig) -> np.ndarray:
        """The run's (subsampled) training rows in original units, as it trained on them."""
        data = config.data
        key = (data.spec, data.nan, data.image_size)
        if key not in self.datasets:
            self.datasets[key] = load(data.spec, nan=data.nan, image_size=data.image_size)
        dataset = self.datasets[key]
        split = (*key, data.split_seed, data.val_fraction, data.test_fraction, data.normal_classes)
        protocol = (*split, data.contaminate, data.contaminate_seed)
        if protocol not in self.train_rows:
            prepared = prepare_data(config, dataset)
            x_train = dataset.x[prepared.train] if prepared.train_x is None else prepared.train_x
            n_elements = max(1, int(np.prod(dataset.shape)))
            keep = seeded_subset(len(x_train), max(1, OWN_METRIC_ELEMENTS // n_elements))
            self.train_rows[protocol] = x_train[keep]
        return self.train_rows[protocol]

    def residuals(
        self, run_dir: str, spaces: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, torch.Tensor], float]:
        """The run's training residuals (float64) in each preprocessing space (name -> Preprocessor
        JSON), as its objective scores them (objective_reconstruction), and its added term per element."""
        run = load_run(self.out / run_dir)
        x_orig = self.train_data(run.config)
        preprocessor = Preprocessor.from_json(run.config.data.preprocess)
        x = preprocessor.transform(x_orig)  # (n, *shape) in the run's own space
        x_hat, term = objective_reconstruction(run, torch.from_numpy(x))
        found = {}
        for name, target in spaces.items():
            if target == run.config.data.preprocess:
                residual = x_hat.astype(np.float64) - x
            else:  # through original units into the other space
                other = Preprocessor.from_json(target)
                x_hat_orig = preprocessor.inverse(x_hat).astype(np.float64)
                residual = other.transform(x_hat_orig) - other.transform(x_orig)
            found[name] = torch.from_numpy(np.asarray(residual, dtype=np.float64))
        return found, term / max(1, int(np.prod(x.shape[1:])))


@torch.no_grad()
def objective_reconstruction(run: Run, x: torch.Tensor) -> tuple[np.ndarray, float]:
    """The point reconstructions (N, *shape) that the run's training objective scores for x, and
    the mean per sample of the term it adds (Autoencoder.objective_pass): an AE's noiseless pass;
    a DAE's decoding of a corruption of x; a VAE's decoding of one z ~ q(z|x), with beta * KL.
    The draws come from one generator seeded OBJECTIVE_SEED over batches of EVAL_BATCH rows, so
    every run of a comparison (same rows, same model kind and sizes) sees the same noise."""
    model = run.model
    model.eval()
    noise = torch.Generator().manual_seed(OBJECTIVE_SEED)
    outputs, terms = [], []
    for start in range(0, len(x), EVAL_BATCH):
        out, term = model.objective_pass(x[start : start + EVAL_BATCH], noise)
        outputs.append(model.criterion.reconstruct(out))
        terms.append(term)
    return torch.cat(outputs).numpy(), float(torch.cat(terms).double().mean()) if len(x) else 0.0


def preprocessing_of(out: Path, row: Row) -> dict[str, Any]:
    """A run's fitted preprocessing, read through the run schema (a damaged config.json is a
    ValueError naming it, as load_run gives)."""
    return dict(read_config(out / row.run_dir / "config.json").data.preprocess)


def weights_stamp(out: Path, row: Row) -> str:
    """Which weights a run folder holds: its model file's modification time and size ('' if absent).
    A run written again (a study retrying it, or anything else) gets a new stamp."""
    try:
        found = (out / row.run_dir / "model.safetensors").stat()
    except OSError:
        return ""
    return f"{STAMP_ROWS}:{found.st_mtime_ns}:{found.st_size}"


def compute_values(
    out: Path, members: list[Member], missing: dict[tuple[str, str], str]
) -> dict[tuple[str, str], float | None]:
    """Own-metric values for the (run_id, spec) pairs in ``missing`` (None where not finite;
    left out where the run's folder cannot be read)."""
    rows = {member.row.run_id: member.row for member in members}
    by_run: dict[str, dict[str, str]] = defaultdict(dict)  # run_id -> spec -> owner run_id
    for (run_id, spec), owner in missing.items():
        by_run[run_id][spec] = owner
    spaces: dict[str, dict[str, Any]] = {}  # owner run_id -> its preprocessing
    loader = RunResiduals(out)
    values: dict[tuple[str, str], float | None] = {}
    for run_id, specs in by_run.items():
        try:
            for owner in specs.values():
                if owner not in spaces:
                    spaces[owner] = preprocessing_of(out, rows[owner])
            residuals, term = loader.residuals(rows[run_id].run_dir, {o: spaces[o] for o in specs.values()})
        except (OSError, ValueError, KeyError):  # run folder missing or unreadable: no value, not cached
            continue
        for spec, owner in specs.items():
            try:
                value = own_metric(spec, residuals[owner]) + term
            except ValueError:
                value = math.nan
            values[(run_id, spec)] = value if math.isfinite(value) else None
    return values


def mean_and_low(margins: list[float]) -> tuple[int, float, float]:
    """(n, mean, lower end of the 95% t interval; the mean itself for n < 2) of finite margins."""
    x = np.asarray([m for m in margins if not math.isnan(m)], dtype=np.float64)
    if len(x) == 0:
        return 0, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2 or not bool(np.isfinite(x).all()):
        return len(x), mean, mean
    return len(x), mean, mean - float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def margin(own: float, rival: float, likelihood: bool) -> float:
    """How much worse ``own`` is than ``rival`` on the own metric (module docstring)."""
    if likelihood:
        return own - rival
    if rival > 0:
        return (own - rival) / rival
    return math.inf if own > rival else 0.0


def own_metric_flags(
    members: list[Member], values: dict[tuple[str, str], float | None]
) -> dict[str, dict[str, Any]]:
    """own_metric, own_metric_value, own_metric_rival, own_metric_margin, own_metric_failure per run."""
    flags: dict[str, dict[str, Any]] = {}
    comparisons: dict[str, list[Member]] = defaultdict(list)
    for member in members:
        comparisons[member.comparison].append(member)
    for group in comparisons.values():
        runs = {(m.criterion, m.seed): m for m in group}
        criteria = list(dict.fromkeys(m.criterion for m in group))
        for criterion in criteria:
            own_runs = [m for m in group if m.criterion == criterion and m.own_spec is not None]
            if not own_runs:
                continue
            likelihood = describe(criterion).likelihood
            results = []  # (mean margin, loses, rival)
            for rival in criteria:
                if rival == criterion:
                    continue
                margins = []
                for own in own_runs:
                    other = runs.get((rival, own.seed))
                    if other is None:
                        continue
                    a = values.get((own.row.run_id, str(own.own_spec)))
                    b = values.get((other.row.run_id, str(own.own_spec)))
                    if a is not None and b is not None:
                        margins.append(margin(a, b, likelihood))
                n, mean, low = mean_and_low(margins)
                if n == 0:
                    continue
                everywhere = min(margins) > OWN_METRIC_TOLERANCE  # worse beyond tolerance on every seed
                loses = mean > OWN_METRIC_TOLERANCE and (n < 2 or low > 0 or everywhere)
                results.append((mean, loses, rival))
            if not results:
                continue
            losing = [r for r in results if r[1]]
            mean, loses, rival = max(losing or results, key=lambda r: r[0])
            for own in own_runs:
                value = values.get((own.row.run_id, str(own.own_spec)))
                flags[own.row.run_id] = {
                    "own_metric": own.own_spec,
                    "own_metric_value": value,
                    "own_metric_rival": rival,
                    "own_metric_margin": mean if math.isfinite(mean) else None,
                    "own_metric_failure": bool(loses),
                }
    return flags


def history_flags(out: Path, row: Row) -> dict[str, Any]:
    """under_trained and unstable from metrics.json, or from history.csv for runs written before them."""
    found = {name: bool(row.metrics[name]) for name in HISTORY_FLAGS if name in row.metrics}
    if len(found) == len(HISTORY_FLAGS):
        return found
    try:
        history = pd.read_csv(out / row.run_dir / "history.csv")
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return found
    if "val_loss" not in history:
        return found
    computed = history_health(pd.to_numeric(history["val_loss"], errors="coerce").to_numpy())
    return {**{name: bool(computed[name]) for name in HISTORY_FLAGS if name in computed}, **found}


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread within the block (its setting restored after): the work is many small
    models and arrays, which extra threads slow down (on 2 busy cores, 38 s against 5 s for the
    quick preset's 180 runs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def update_health(out: Path | str) -> dict[str, dict[str, Any]]:
    """Judge every finished run of a study folder, store the flags and return them (run_id -> flags)."""
    out = Path(out)
    with Store(out, create=False) as store, one_thread():
        rows = store.rows()
        members = members_of(rows)
        stamps = {member.row.run_id: weights_stamp(out, member.row) for member in members}
        stored = store.own_metrics()
        cached = {pair: value for pair, (stamp, value) in stored.items() if stamps.get(pair[0]) == stamp}
        wanted = wanted_values(members)
        missing = {pair: owner for pair, owner in wanted.items() if pair not in cached}
        computed = compute_values(out, members, missing) if missing else {}
        if computed:
            store.add_own_metrics({pair: (stamps[pair[0]], value) for pair, value in computed.items()})
        flags = own_metric_flags(members, {**cached, **computed})
        for member in members:
            found = flags.setdefault(member.row.run_id, {})
            found.update(history_flags(out, member.row))
            found.update(degenerate_flags(member.row.metrics))
        store.set_health(flags)
    return flags


def reasons(flags: dict[str, Any]) -> list[str]:
    """The reasons a run is flagged, in words (empty when healthy)."""
    return [text for name, text in REASONS.items() if flags.get(name)]
