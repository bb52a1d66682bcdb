"""Which runs may train fused, and training a group of them into ordinary run directories.

Which settings members must share is declared once, in the run schema (lpae.config: each
field's ``fused`` mark): the data (spec, NaN policy, image size, split fractions, and for
one-class runs the normal classes and split seed, so every member has equally many rows), the
model kind and architecture (arch, hidden, latent, activation, image shape) and the batch size
and device. Everything else may differ between members: criterion (learned scales and shapes
included; n_outputs too), seed, learning rate, schedule, epochs, patience, optimizer, weight
decay, clipping, corruption, beta, KL warm-up, preprocessing, split seed (of runs on all
classes) and contamination (outliers replace training rows, so the count stays).

``train_group(specs, outs, overwrite=False)`` is train_run for many runs at once: same arguments
per member, same files, one metrics dict per member in order. It falls back to training the
members one after another with lpae.experiment.train_run (same results, no ``fused`` mark) when
the architecture is convolutional (decided once the data are loaded: arch auto on images), when
a member's model is one the stacked model cannot batch exactly (lpae.fused.stacked.batch_problem:
a model kind with other layers, or with parameters outside its networks and criterion), or when
there is only one member. Members that train on dequantized data (lpae.dequantize: the noise is
drawn by lpae.train) train alone, and the others as a group of their own.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from lpae.config import (
    SHARED,
    SHARED_ONE_CLASS,
    Option,
    RunConfig,
    RunSpec,
    as_json,
    options,
)
from lpae.data import load, normalize_spec
from lpae.experiment import init_model, prepare_run, train_run, write_trained_run
from lpae.fused.stacked import batch_problem
from lpae.fused.train import fit_group
from lpae.runs import PreparedData, partial_dir

MAX_MEMBERS = 32


def shared_value(spec: RunSpec, option: Option) -> Any:
    """What members must agree on for a shared setting (None where the setting is free here)."""
    if option.fused == SHARED_ONE_CLASS and spec.normal_classes is None:
        return None
    value = getattr(spec if option.section == "run" else getattr(spec, option.section), option.name)
    if option.name == "data":  # one data set, however its spec is written
        try:
            return normalize_spec(value)
        except ValueError:
            return value.strip()
    return value


def shared_mismatch(spec_a: RunSpec, spec_b: RunSpec) -> str | None:
    """The first setting that fused members must share (lpae.config marks them) and these two
    runs do not, in words; None when they may share a group."""
    # Shared settings first: a one-class rule only speaks once both runs are one-class alike.
    shared = [o for o in options().values() if o.fused == SHARED]
    for option in [*shared, *(o for o in options().values() if o.fused == SHARED_ONE_CLASS)]:
        a, b = shared_value(spec_a, option), shared_value(spec_b, option)
        if a != b:
            name = option.name if option.fused == SHARED else f"{option.name} of one-class runs"
            return f"{name} differs ({a!r} vs {b!r})"
    return None


def fuse_mismatch(spec_a: RunSpec, spec_b: RunSpec) -> str | None:
    """Why two runs cannot train fused (the first differing shared setting), or None if they can."""
    for spec in (spec_a, spec_b):
        if spec.model.arch == "conv":
            return "arch conv trains one run at a time"
    return shared_mismatch(spec_a, spec_b)


def can_fuse(spec_a: RunSpec, spec_b: RunSpec) -> bool:
    """Whether two runs may train in one fused group (see the module docstring)."""
    return fuse_mismatch(spec_a, spec_b) is None


def fuse_groups(specs: Sequence[RunSpec], max_members: int = MAX_MEMBERS) -> list[list[int]]:
    """Partition run indices into fusable groups of at most ``max_members``, in first-seen order."""
    if max_members < 1:
        raise ValueError(f"max_members must be a positive integer, got {max_members}")
    groups: list[list[int]] = []
    open_groups: list[list[int]] = []
    for index, spec in enumerate(specs):
        home = next((g for g in open_groups if can_fuse(specs[g[0]], spec) and len(g) < max_members), None)
        if home is None:
            home = []
            groups.append(home)
            if spec.model.arch != "conv":
                open_groups.append(home)
        home.append(index)
    return groups


def check_outs(specs: Sequence[RunSpec], outs: Sequence[Path], overwrite: bool) -> None:
    if not specs:
        raise ValueError("train_group needs at least one run")
    if len(specs) != len(outs):
        raise ValueError(
            f"train_group needs one output folder per run: {len(specs)} runs, {len(outs)} folders"
        )
    if len({out.resolve() for out in outs}) != len(outs):
        raise ValueError("train_group: two runs of a group would be written to the same folder")
    for out in outs:
        if out.exists() and not overwrite:
            raise ValueError(f"{out}: already exists (choose another --out, or pass --overwrite)")
        if partial_dir(out).exists() and not overwrite:
            raise ValueError(
                f"{partial_dir(out)}: an interrupted run of {out} is there; train it alone with --resume, "
                "or pass --overwrite to start over"
            )
    for index, spec in enumerate(specs[1:], start=1):
        reason = shared_mismatch(specs[0], spec)
        if reason is not None:
            raise ValueError(
                f"run {index} cannot train fused with run 0: {reason}; split them with lpae.fused.fuse_groups"
            )


def train_group(
    specs: Sequence[RunSpec], outs: Sequence[Path | str], overwrite: bool = False
) -> list[dict[str, Any]]:
    """Train runs that can fuse (:func:`can_fuse`) as one batched model; write each run directory.

    Returns each run's metrics, in order, as lpae.experiment.train_run would. Raises ValueError,
    before training anything, when the runs cannot share a group, an output folder exists (without
    ``overwrite``) or a member's data lie outside its criterion's support.
    """
    specs, paths = list(specs), [Path(out) for out in outs]
    check_outs(specs, paths, overwrite)
    if len(specs) == 1 or any(s.model.arch == "conv" for s in specs):
        return sequential(specs, paths, overwrite)
    first = specs[0]
    dataset = load(first.data, nan=first.nan, image_size=first.image_size)
    # Members with the same data settings (split, preprocessing) share their prepared data.
    prepared: dict[str, tuple[PreparedData, Tensor, Tensor]] = {}
    configs, member_data = [], []
    for spec in specs:
        config, data = prepare_run(spec, dataset)
        if config.model.arch != "mlp":
            return sequential(specs, paths, overwrite)
        key = json.dumps(as_json(config.data), sort_keys=True)
        if key not in prepared:
            prepared[key] = (data, data.tensor("train"), data.tensor("val"))
        configs.append(config)
        member_data.append(prepared[key])
    solo = [i for i, config in enumerate(configs) if config.train.dequantize == "on"]
    if solo:  # its noise is drawn by lpae.train (lpae.dequantize): those alone, the others fused
        return with_solo(specs, paths, overwrite, solo)
    x_trains = [train for _, train, _ in member_data]
    x_vals = [val for _, _, val in member_data]
    models = [init_model(config, spec.train.seed) for config, spec in zip(configs, specs, strict=True)]
    if any(batch_problem(model) is not None for model in models):  # a model kind it cannot batch
        return sequential(specs, paths, overwrite)
    for index, (model, x_train) in enumerate(zip(models, x_trains, strict=True)):
        try:
            model.criterion.check_support(x_train)
        except ValueError as error:
            raise ValueError(f"run {index}: {error}") from None
    results = fit_group(models, x_trains, x_vals, [spec.train for spec in specs])
    group = uuid.uuid4().hex[:12]
    return [
        write_trained_run(out, fused_config(config, group), model, result, data, overwrite)
        for out, config, model, result, (data, _, _) in zip(
            paths, configs, models, results, member_data, strict=True
        )
    ]


def fused_config(config: RunConfig, group: str) -> RunConfig:
    """A member's config.json: its own resolved config plus the fused-group marks.

    A member's directory is otherwise exactly what lpae.experiment.train_run writes."""
    return dataclasses.replace(config, fused=True, group=group)


def with_solo(
    specs: Sequence[RunSpec], outs: Sequence[Path], overwrite: bool, solo: Sequence[int]
) -> list[dict[str, Any]]:
    """Members ``solo`` trained alone by train_run, the others as a group of their own; in order."""
    results: dict[int, dict[str, Any]] = {i: train_run(specs[i], outs[i], overwrite=overwrite) for i in solo}
    rest = [i for i in range(len(specs)) if i not in results]
    if rest:
        fused = train_group([specs[i] for i in rest], [outs[i] for i in rest], overwrite)
        results.update(zip(rest, fused, strict=True))
    return [results[i] for i in range(len(specs))]


def sequential(specs: Sequence[RunSpec], outs: Sequence[Path], overwrite: bool) -> list[dict[str, Any]]:
    """The fallback: each run trained alone by lpae.experiment.train_run."""
    return [train_run(spec, out, overwrite=overwrite) for spec, out in zip(specs, outs, strict=True)]
