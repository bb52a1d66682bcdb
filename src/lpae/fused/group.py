"""Which runs may train fused, and training a group of them into ordinary run directories.

Runs fuse when they share the data (spec, NaN policy, image size, split fractions, and for
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
there is only one member, or when a spec sets an option this module does not know to mirror (a
RunSpec, ModelSettings or TrainSettings field added after it, at a non-default value).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

from torch import Tensor

from lpae.data import load, normalize_spec
from lpae.experiment import RunSpec, init_model, make_config, train_run, write_trained_run
from lpae.fused.train import fit_group
from lpae.models import ModelSettings
from lpae.runs import PreparedData, partial_dir, prepare_data
from lpae.train import TrainSettings

MAX_MEMBERS = 32

# The fields whose effect lpae.fused mirrors; a field added later makes a run train alone
# (unless left at its default) rather than fused without it.
KNOWN_FIELDS = {
    RunSpec: {"data", "loss", "model", "train", "preprocess", "nan", "image_size", "split_seed",
              "val_fraction", "test_fraction", "normal_classes", "contaminate"},
    ModelSettings: {"model", "arch", "hidden", "latent", "activation", "corruption", "beta",
                    "kl_warmup", "image_shape"},
    TrainSettings: {"epochs", "lr", "batch_size", "seed", "weight_decay", "patience", "optimizer",
                    "schedule", "clip", "checkpoint_every", "device"},
}  # fmt: skip


def data_spec(spec: RunSpec) -> str:
    try:
        return normalize_spec(spec.data)
    except ValueError:
        return spec.data.strip()


# What fused members must share: (what it is called in a message, how to read it from a spec).
SHARED: list[tuple[str, Callable[[RunSpec], Any]]] = [
    ("data", data_spec),
    ("nan", lambda s: s.nan),
    ("image_size", lambda s: s.image_size),
    ("val_fraction", lambda s: s.val_fraction),
    ("test_fraction", lambda s: s.test_fraction),
    ("normal_classes", lambda s: s.normal_classes),  # the one-class protocol keeps fewer rows,
    # and how many of them fall in train and validation depends on the split seed
    ("split_seed of one-class runs", lambda s: None if s.normal_classes is None else s.split_seed),
    ("model", lambda s: s.model.model),
    ("arch", lambda s: s.model.arch),
    ("hidden", lambda s: s.model.hidden),
    ("latent", lambda s: s.model.latent),
    ("activation", lambda s: s.model.activation),
    ("image_shape", lambda s: s.model.image_shape),
    ("batch_size", lambda s: s.train.batch_size),
    ("device", lambda s: s.train.device),
]


def fuse_mismatch(spec_a: RunSpec, spec_b: RunSpec) -> str | None:
    """Why two runs cannot train fused (the first differing shared setting), or None if they can."""
    for spec in (spec_a, spec_b):
        if spec.model.arch == "conv":
            return "arch conv trains one run at a time"
    return shared_mismatch(spec_a, spec_b)


def shared_mismatch(spec_a: RunSpec, spec_b: RunSpec) -> str | None:
    """The first setting that fused members must share and these two runs do not, in words."""
    for name, read in SHARED:
        a, b = read(spec_a), read(spec_b)
        if a != b:
            return f"{name} differs ({a!r} vs {b!r})"
    return None


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


def field_default(item: Field[Any]) -> Any:
    if item.default is not MISSING:
        return item.default
    if item.default_factory is not MISSING:
        return item.default_factory()
    return MISSING


def unknown_options(spec: RunSpec) -> list[str]:
    """Options of ``spec`` set away from their defaults that lpae.fused does not mirror."""
    found = []
    for owner, value in ((RunSpec, spec), (ModelSettings, spec.model), (TrainSettings, spec.train)):
        for item in fields(owner):
            if item.name not in KNOWN_FIELDS[owner] and getattr(value, item.name) != field_default(item):
                found.append(f"{owner.__name__}.{item.name}")
    return found


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
    if len(specs) == 1 or any(s.model.arch == "conv" or unknown_options(s) for s in specs):
        return sequential(specs, paths, overwrite)
    first = specs[0]
    dataset = load(first.data, nan=first.nan, image_size=first.image_size)
    configs = [make_config(spec, dataset) for spec in specs]
    if configs[0]["model"]["arch"] != "mlp":
        return sequential(specs, paths, overwrite)
    # Members with the same data settings (split, preprocessing) share their prepared data.
    prepared: dict[str, tuple[PreparedData, Tensor, Tensor]] = {}
    member_data = []
    for config in configs:
        key = json.dumps(config["data"], sort_keys=True)
        if key not in prepared:
            data = prepare_data(config, dataset)
            prepared[key] = (data, data.tensor("train"), data.tensor("val"))
        member_data.append(prepared[key])
    x_trains = [train for _, train, _ in member_data]
    x_vals = [val for _, _, val in member_data]
    models = [init_model(config, spec.train.seed) for config, spec in zip(configs, specs, strict=True)]
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


def fused_config(config: dict[str, Any], group: str) -> dict[str, Any]:
    """A member's config.json: its own resolved config plus the fused-group marks.

    A member's directory is otherwise exactly what lpae.experiment.train_run writes."""
    return {**config, "fused": True, "group": group}


def sequential(specs: Sequence[RunSpec], outs: Sequence[Path], overwrite: bool) -> list[dict[str, Any]]:
    """The fallback: each run trained alone by lpae.experiment.train_run."""
    return [train_run(spec, out, overwrite=overwrite) for spec, out in zip(specs, outs, strict=True)]
