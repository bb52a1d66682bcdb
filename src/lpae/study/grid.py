"""Study grids: a TOML file (or a built-in preset) expanded into the list of runs to train.

A grid crosses data sets x models x criteria x contamination levels x seeds, plus one-class runs
for data sets that name ``normal_classes``::

    name = "mine"
    seeds = [0, 1, 2]
    criteria = ["lp:0.5", "l1", "l2", "huber"]
    contaminate = [0.0, 0.05]        # optional; fractions of training rows replaced by outliers
    data = ["digits", "wine"]        # or tables: [[data]] spec = "digits", normal_classes = [0]

    [[models]]                       # optional; one table per model, any model option
    model = "ae"
    hidden = [64]
    latent = 8

    [train]                          # optional; training options shared by every run
    epochs = 30

A grid may also be a union of blocks: each ``[[grids]]`` table overrides any of the keys above
(``train`` key by key) and adds its own cross product; a run named by two blocks is trained once.
This keeps a big study from being a full cross product (e.g. contamination only for small data).

The option names of [train] and [[models]] tables are the run settings that lpae.config marks
for the grid (``lpae.config.options("grid")``: model and training settings, preprocessing, NaN
policy, image size, split fractions), each checked against its type; data, criteria, seeds,
one-class classes and contamination have their own keys above (``SET_BY_GRID``).

Data entries take every spec that ``lpae train --data`` takes, file paths with their options
included: a relative path is resolved against the grid file's folder, and a file's runs carry its
content fingerprint in their key (lpae.study.files); so do the runs of a set read from a local
folder (``cifar10:path=DIR``), keyed by its files' fingerprint.

Everything is validated before any run starts: unknown keys, unknown or malformed specs
(through ``lpae.criteria.normalize`` and ``lpae.data.DATASETS``), bad values, duplicate runs and
an empty grid all raise ``ValueError`` naming the file and the key. Each run is a
:class:`lpae.config.RunSpec` whose canonical JSON (``run_key``) is its key in the results store;
the split seed follows the run's seed, so every criterion of one seed sees the same split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from lpae import criteria
from lpae.config import SEED_LIMIT, RunSpec, as_json, coerce, options, with_options
from lpae.data import DATASETS, PATH_PARAM, is_file_spec, missing_requirement
from lpae.models import check_fits_memory
from lpae.study.files import (
    FINGERPRINT_KEY,
    file_fingerprint,
    local_folder,
    resolve_file_spec,
    resolve_folder_spec,
    spec_path,
)

BLOCK_KEYS = ("seeds", "criteria", "data", "models", "train", "contaminate")
TOP_KEYS = ("name", *BLOCK_KEYS, "grids")
DATA_KEYS = ("spec", "normal_classes", "optional")
PRESETS = ("quick", "full")
# Run settings that the grid sets through its own keys rather than option tables.
SET_BY_GRID = {
    "data": "data",
    "loss": "criteria",
    "seed": "seeds",
    "split_seed": "seeds",
    "normal_classes": "data (normal_classes of a [[data]] table)",
    "contaminate": "contaminate",
}


@dataclass(frozen=True)
class PlannedRun:
    """One run of a grid: its spec, its canonical key and a short id for its directory."""

    spec: RunSpec
    key: str
    run_id: str
    position: int
    fingerprint: str | None = None  # of the data file, for runs on a user's file

    @property
    def dir_path(self) -> str:
        """The run folder, relative to the study folder."""
        seed = self.spec.train.seed
        return f"runs/{slug(data_label(self.spec.data))}--{slug(self.spec.loss)}--s{seed}--{self.run_id[:10]}"


@dataclass(frozen=True)
class Grid:
    name: str
    origin: str  # preset name or file path
    text: str  # the TOML text, stored with the study so `--resume` can rebuild it
    runs: tuple[PlannedRun, ...]
    notes: tuple[str, ...] = field(default=())  # e.g. optional data sets that are not available
    base: str = ""  # the folder relative data paths were resolved against

    @property
    def files(self) -> dict[str, str]:
        """Data file path -> its fingerprint, for the grid's runs on users' files."""
        return {spec_path(r.spec.data): r.fingerprint for r in self.runs if r.fingerprint is not None}


def slug(text: str) -> str:
    """A file-name-safe form of a spec: 'lp:p=0.5' -> 'lp_p-0.5'."""
    out = "".join(c if c.isalnum() or c in ".-" else "-" if c == "=" else "_" for c in text)
    return out.strip("_")[:60] or "x"


def data_label(spec: str) -> str:
    """A data spec as run folders name it: a file spec by its file name and options, a set read
    from a folder by the folder's name."""
    if not is_file_spec(spec):
        folder = local_folder(spec)
        if folder is None:
            return spec
        name, values = folder
        return DATASETS.canonical(name, {**values, PATH_PARAM: Path(values[PATH_PARAM]).name or "root"})
    path, _, rest = spec.partition(":")
    return Path(path).name + (f":{rest}" if rest else "")


def run_key(spec: RunSpec, fingerprint: str | None = None) -> str:
    """Canonical JSON of a resolved RunSpec (criterion and data specs already canonical), with the
    data file's fingerprint for runs on a user's file."""
    value = as_json(spec)
    if fingerprint is not None:
        value[FINGERPRINT_KEY] = fingerprint
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def run_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# --- reading ------------------------------------------------------------------------------------


def preset_text(name: str) -> str:
    return (resources.files("lpae.study") / "presets" / f"{name}.toml").read_text()


def load_grid(source: str | Path) -> Grid:
    """A preset name (quick, full) or a path to a TOML grid, validated and expanded; relative data
    paths in a grid file are relative to its folder."""
    text_source = str(source)
    if text_source in PRESETS:
        return parse_grid(preset_text(text_source), f"preset {text_source}")
    path = Path(source)
    if path.suffix != ".toml" or not path.is_file():
        if path.suffix == ".toml":
            raise ValueError(f"{path}: no such grid file")
        raise ValueError(f"{text_source!r} is neither a preset ({', '.join(PRESETS)}) nor a .toml grid file")
    return parse_grid(path.read_text(), str(path), path.resolve().parent)


def parse_grid(text: str, origin: str = "grid", base: Path | str | None = None) -> Grid:
    """A grid from its TOML text; ``base`` is the folder relative data paths are resolved against
    (default: the folder of ``origin`` when it names a .toml file, else the current folder)."""
    if base is None:
        base = Path(origin).parent if origin.endswith(".toml") else Path.cwd()
    base = Path(base).resolve()
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{origin}: not valid TOML: {error}") from None
    check_keys(table, TOP_KEYS, origin)
    name = table.get("name", Path(origin).stem if origin.endswith(".toml") else origin.split()[-1])
    check_name(name, origin)
    blocks = table.get("grids")
    if blocks is None:
        runs, notes = expand_block(table, origin, base)
    else:
        if not isinstance(blocks, list) or not blocks or not all(isinstance(b, dict) for b in blocks):
            raise ValueError(f"{origin}: grids must be one or more [[grids]] tables")
        runs, notes = [], []
        seen: set[str] = set()
        shared = {key: value for key, value in table.items() if key not in ("grids", "name")}
        for index, block in enumerate(blocks):
            where = f"{origin}: grids[{index}]"
            check_keys(block, BLOCK_KEYS, where)
            if not isinstance(block.get("train", {}), dict) or not isinstance(shared.get("train", {}), dict):
                raise ValueError(f"{where}: [train] must be a table of options")
            merged = {**shared, **block, "train": {**shared.get("train", {}), **block.get("train", {})}}
            block_runs, block_notes = expand_block(merged, where, base)
            # Blocks may overlap (a run in two blocks is one run); within a block a repeat is an error.
            runs += [r for r in block_runs if r.key not in seen]
            seen.update(r.key for r in block_runs)
            notes += [n for n in block_notes if n not in notes]
    if not runs:
        raise ValueError(f"{origin}: the grid is empty (no runs to train)")
    runs = [dataclasses.replace(run, position=i) for i, run in enumerate(runs)]
    return Grid(name.strip(), origin, text, tuple(runs), tuple(notes), str(base))


def check_name(name: Any, origin: str) -> None:
    """A study name is a name, not a path: it becomes the folder ``studies/NAME``, so separators,
    ``.``/``..``, a leading dot (hidden, like staging folders) and control characters are refused."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{origin}: name must be a non-empty string")
    text = name.strip()
    bad = (
        "/" in text or "\\" in text or text.startswith(".") or any(ord(c) < 32 or ord(c) == 127 for c in text)
    )
    if bad:
        raise ValueError(
            f"{origin}: name {name!r} is not a plain name (no path separators, no leading dot, no "
            "control characters); the study is written to studies/NAME, or give the folder with --out"
        )


def check_keys(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")


def expand_block(table: dict[str, Any], origin: str, base: Path) -> tuple[list[PlannedRun], list[str]]:
    """The runs of one grid: top-level keys, or the top level merged with one [[grids]] table."""
    seeds = int_list(table, "seeds", origin)
    losses = criteria_list(table, origin)
    data, notes = data_entries(table, origin, base)
    models = model_tables(table, origin)
    train = table.get("train", {})
    if not isinstance(train, dict):
        raise ValueError(f"{origin}: [train] must be a table of options")
    if "seed" in train:
        raise ValueError(f"{origin}: [train] seed: give seeds as `seeds = [...]` at the top level")
    check_train_table(train, f"{origin}: [train]")
    levels = contamination_levels(table, origin)
    return expand(origin, seeds, losses, data, models, train, levels), notes


def check_train_table(train: dict[str, Any], where: str) -> None:
    """Unknown keys and values of the wrong type in [train] named as [train]'s (not as the first
    model's, with whose options they are merged); checks between settings come with the models."""
    allowed = options("grid")
    unknown = sorted(set(train) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    for name, value in train.items():
        coerce(allowed[name], value, where)


def int_list(table: dict[str, Any], key: str, origin: str) -> list[int]:
    values = table.get(key, [0])
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(f"{origin}: {key} must be a list of integers, got {values!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{origin}: {key} has duplicates: {values!r}")
    if any(not 0 <= v < SEED_LIMIT for v in values):
        raise ValueError(f"{origin}: {key} must be integers with 0 <= seed < 2**32, got {values!r}")
    return values


def criteria_list(table: dict[str, Any], origin: str) -> list[str]:
    raw = table.get("criteria", [])
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise ValueError(f"{origin}: criteria must be a list of criterion specs (strings)")
    seen: dict[str, str] = {}
    for text in raw:
        try:
            canonical = criteria.normalize(text)
        except ValueError as error:
            raise ValueError(f"{origin}: criteria: {error}") from None
        if canonical in seen:
            raise ValueError(
                f"{origin}: criteria {seen[canonical]!r} and {text!r} are the same ({canonical})"
            )
        seen[canonical] = text
    return list(seen)


@dataclass(frozen=True)
class DataEntry:
    spec: str  # canonical
    normal_sets: tuple[tuple[int, ...], ...]
    fingerprint: str | None = None  # a user's file: its content fingerprint


def data_entries(table: dict[str, Any], origin: str, base: Path) -> tuple[list[DataEntry], list[str]]:
    raw = table.get("data", [])
    if not isinstance(raw, list):
        raise ValueError(f"{origin}: data must be a list of data set specs or [[data]] tables")
    entries: list[DataEntry] = []
    notes: list[str] = []
    for item in raw:
        item = {"spec": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not isinstance(item.get("spec"), str):
            raise ValueError(f'{origin}: each data entry needs spec = "..." (a data set spec)')
        unknown = sorted(set(item) - set(DATA_KEYS))
        if unknown:
            allowed = ", ".join(DATA_KEYS)
            raise ValueError(
                f"{origin}: data {item['spec']!r}: unknown key {unknown[0]!r}; allowed: {allowed}"
            )
        optional = item.get("optional", False)
        if not isinstance(optional, bool):
            raise ValueError(f"{origin}: data {item['spec']!r}: optional must be true or false")
        if is_file_spec(item["spec"]):
            entry_of_file = file_entry(item, base, origin, optional, notes)
            if entry_of_file is not None:
                if any(e.spec == entry_of_file.spec for e in entries):
                    raise ValueError(f"{origin}: data file {entry_of_file.spec!r} is listed twice")
                entries.append(entry_of_file)
            continue
        try:
            entry, values = DATASETS.resolve(item["spec"])
        except ValueError as error:
            if optional:
                notes.append(f"data set {item['spec']!r} skipped: {error}")
                continue
            raise ValueError(f"{origin}: data: {error}") from None
        command = missing_requirement(entry.name, values)
        if command is not None:
            if optional:
                notes.append(f"data set {item['spec']!r} skipped: needs `{command}`")
                continue
            raise ValueError(f"{origin}: data set {entry.name!r} needs an optional package: {command}")
        spec, found = DATASETS.canonical(entry.name, values), None
        if local_folder(spec) is not None:  # a local copy of a set's files: resolved and fingerprinted
            try:
                spec = resolve_folder_spec(entry.name, values, base)
                found = file_fingerprint(spec)
            except ValueError as error:
                if optional:
                    notes.append(f"data set {item['spec']!r} skipped: {error}")
                    continue
                raise ValueError(f"{origin}: data: {error}") from None
        if any(e.spec == spec for e in entries):
            raise ValueError(f"{origin}: data set {spec!r} is listed twice")
        sets = normal_sets(item, entry.tags.get("labels"), origin)
        check_classes(sets, entry.tags.get("classes"), f"{origin}: data {item['spec']!r}: normal_classes")
        entries.append(DataEntry(spec, sets, found))
    return entries, notes


def file_entry(
    item: dict[str, Any], base: Path, origin: str, optional: bool, notes: list[str]
) -> DataEntry | None:
    """The entry of a user's file: resolved spec and fingerprint (None: optional and missing)."""
    try:
        spec = resolve_file_spec(item["spec"], base)
        found = file_fingerprint(spec)
    except ValueError as error:
        if optional:
            notes.append(f"data set {item['spec']!r} skipped: {error}")
            return None
        raise ValueError(f"{origin}: {error}") from None
    # Whether a file has labels is known only once it is read: checked when its runs start.
    return DataEntry(spec, normal_sets(item, None, origin), found)


def normal_sets(item: dict[str, Any], labelled: Any, origin: str) -> tuple[tuple[int, ...], ...]:
    raw = item.get("normal_classes")
    if raw is None:
        return ()
    where = f"{origin}: data {item['spec']!r}: normal_classes"
    sets = raw if raw and all(isinstance(v, list) for v in raw) else [raw]
    out = []
    for classes in sets:
        if not isinstance(classes, list) or not classes or not all(isinstance(c, int) for c in classes):
            raise ValueError(f"{where} must be a list of class labels (integers) or a list of such lists")
        out.append(tuple(sorted(set(classes))))
    if labelled is False:
        raise ValueError(f"{where}: data set {item['spec']!r} has no labels")
    return tuple(out)


def check_classes(sets: tuple[tuple[int, ...], ...], count: Any, where: str) -> None:
    """Normal classes of a data set whose labels are known to be 0 .. count - 1 (a registry tag):
    each must be one of them, and at least one class must be left out as anomalies."""
    if not isinstance(count, int):
        return  # labels known only once the data is loaded (files): checked when the run starts
    for classes in sets:
        absent = [c for c in classes if not 0 <= c < count]
        if absent:
            raise ValueError(
                f"{where}: {', '.join(map(str, absent))} not among the classes (0 .. {count - 1})"
            )
        if len(classes) == count:
            raise ValueError(f"{where}: {list(classes)} names every class; leave one out as anomalies")


def model_tables(table: dict[str, Any], origin: str) -> list[dict[str, Any]]:
    raw = table.get("models", [{}])
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw):
        raise ValueError(f"{origin}: models must be [[models]] tables of model options")
    return raw


def contamination_levels(table: dict[str, Any], origin: str) -> list[float] | None:
    if "contaminate" not in table:
        return None
    raw = table["contaminate"]
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
    ):
        raise ValueError(f"{origin}: contaminate must be a list of fractions, e.g. [0.0, 0.05, 0.2]")
    if any(not 0 <= v < 1 for v in raw):
        raise ValueError(f"{origin}: contaminate fractions must be in [0, 1), got {raw!r}")
    return [float(v) for v in raw]


# --- expansion ----------------------------------------------------------------------------------


def expand(
    origin: str,
    seeds: list[int],
    losses: list[str],
    data: list[DataEntry],
    models: list[dict[str, Any]],
    train: dict[str, Any],
    levels: list[float] | None,
) -> list[PlannedRun]:
    """data x model x (all classes, then each normal set) x contamination x criterion x seed."""
    runs: list[PlannedRun] = []
    keys: set[str] = set()
    for entry in data:
        for index, model_options in enumerate(models):
            where = f"{origin}: models[{index}]"
            base = with_grid_options(RunSpec(data=entry.spec), {**train, **model_options}, where)
            dry_build(base, losses, where)
            variants: list[dict[str, Any]] = [{"contaminate": c} for c in levels] if levels else [{}]
            # One-class runs use the first contamination level only: anomaly figures compare criteria.
            variants += [{"normal_classes": s, **variants[0]} for s in entry.normal_sets]
            for variant in variants:
                for loss in losses:
                    for seed in seeds:
                        spec = with_options(base, {"loss": loss, "seed": seed, **variant}, where)
                        key = run_key(spec, entry.fingerprint)
                        if key in keys:
                            raise ValueError(f"{where}: the grid names the same run twice ({key})")
                        keys.add(key)
                        runs.append(PlannedRun(spec, key, run_id(key), len(runs), entry.fingerprint))
    return runs


def with_grid_options(spec: RunSpec, values: dict[str, Any], where: str) -> RunSpec:
    """``spec`` with the options of [train] and [[models]] tables set (lpae.config's grid face)."""
    allowed = options("grid")
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    try:
        return with_options(spec, values, where)
    except (TypeError, ValueError) as error:
        message = str(error)
        raise ValueError(message if message.startswith(where) else f"{where}: {message}") from None


def dry_build(spec: RunSpec, losses: list[str], where: str) -> None:
    """Build each criterion and the model once on the data set's declared shape: fail before training."""
    if is_file_spec(spec.data):
        return  # shape known only after loading (user files): checked when the run starts
    entry, values = DATASETS.resolve(spec.data)
    # Declared shapes may name spec arguments: ("dim",) for synthetic:dim=16.
    shape = [values.get(d, d) if isinstance(d, str) else d for d in entry.tags.get("shape") or ()]
    if not shape or not all(isinstance(d, int) for d in shape):
        return  # shape known only after loading (user files): checked when the run starts
    try:
        with torch.device("meta"):  # shapes only: a huge model is checked without allocating it
            for loss in losses:
                check_fits_memory(shape, spec.model, criteria.build(loss, feature_shape=tuple(shape)))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None
