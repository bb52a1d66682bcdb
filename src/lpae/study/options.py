"""Grid options onto RunSpec fields, found at run time with ``dataclasses.fields``.

A grid names settings flatly (``latent = 8``, ``epochs = 30``, ``beta = 4``, ``contaminate = 0.05``).
Each name is looked up, in order, among the fields of ``RunSpec.model`` (ModelSettings),
``RunSpec.train`` (TrainSettings) and ``RunSpec`` itself, so options that later versions add to
any of them work in grids without a change here. A name found nowhere is an error: a clear
"not supported yet" for options that other parts of lpae are adding (corruption, beta, ...),
"unknown key" with the allowed names otherwise.

Values are checked against the field's annotation (int, float, str, bool, tuples of ints) so
that a bad TOML value names the key instead of failing later inside training.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lpae.experiment import RunSpec

# Options that other issues add to RunSpec / ModelSettings / TrainSettings.
PLANNED_OPTIONS = {
    "corruption": "the denoising AE",
    "beta": "the VAE",
    "kl_warmup": "the VAE",
    "normal_classes": "one-class (anomaly) evaluation",
    "contaminate": "training-data contamination",
}
# Settings the grid sets itself (seeds, data, criteria) rather than through option tables.
RESERVED = {"train": {"seed"}, "run": {"data", "loss", "model", "train"}}


def option_fields() -> dict[str, tuple[str, dataclasses.Field[Any]]]:
    """Every settable option name -> (where it lives: "model" | "train" | "run", its field)."""
    found: dict[str, tuple[str, dataclasses.Field[Any]]] = {}
    template = RunSpec()
    for where, owner in (("model", template.model), ("train", template.train), ("run", template)):
        for item in dataclasses.fields(owner):
            if item.name not in RESERVED.get(where, set()) and item.name not in found:
                found[item.name] = (where, item)
    return found


def check_value(name: str, value: Any, annotation: str, where: str) -> Any:
    """Check a TOML value against a field annotation; return it in the field's type."""
    kinds = {part.strip() for part in str(annotation).split("|")}
    if value is None:
        raise ValueError(f"{where}: {name} cannot be empty")
    if "bool" in kinds and isinstance(value, bool):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{where}: {name} = {value!r}: expected {annotation}, not true/false")
    if "int" in kinds and isinstance(value, int):
        return value
    if "float" in kinds and isinstance(value, int | float):
        return float(value)  # 1 and 1.0 must give the same run key
    if "str" in kinds and isinstance(value, str):
        return value
    tuple_kinds = [k for k in kinds if k.startswith("tuple[")]
    if tuple_kinds and isinstance(value, list | tuple):
        element = "float" if "float" in tuple_kinds[0] else "int" if "int" in tuple_kinds[0] else "str"
        return tuple(check_value(name, v, element, where) for v in value)
    if kinds <= {"Any", "object"}:
        return tuple(value) if isinstance(value, list) else value
    raise ValueError(f"{where}: {name} = {value!r}: expected {annotation}")


def split_options(options: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """Sort flat options into {"model": {...}, "train": {...}, "run": {...}}, checking each."""
    known = option_fields()
    placed: dict[str, dict[str, Any]] = {"model": {}, "train": {}, "run": {}}
    for name, value in options.items():
        if name not in known:
            if name in PLANNED_OPTIONS:
                raise ValueError(
                    f"{where}: option {name!r} ({PLANNED_OPTIONS[name]}) is not supported by this "
                    f"version of lpae yet (RunSpec has no field {name!r})"
                )
            allowed = ", ".join(sorted(known))
            raise ValueError(f"{where}: unknown key {name!r}; allowed: {allowed}")
        owner, item = known[name]
        placed[owner][name] = check_value(name, value, str(item.type), where)
    return placed


def apply_options(spec: RunSpec, options: dict[str, Any], where: str) -> RunSpec:
    """A copy of ``spec`` with the options set on the dataclass that owns each of them."""
    placed = split_options(options, where)
    model = dataclasses.replace(spec.model, **placed["model"]) if placed["model"] else spec.model
    train = dataclasses.replace(spec.train, **placed["train"]) if placed["train"] else spec.train
    return dataclasses.replace(spec, model=model, train=train, **placed["run"])


def has_option(name: str) -> bool:
    return name in option_fields()
