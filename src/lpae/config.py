"""Run settings: one typed, frozen schema, the single source of every setting of a run.

A run is chosen by a :class:`RunSpec`: the data and criterion specs, the data protocol (split,
preprocessing, one-class, contamination) and two nested groups, :class:`ModelSettings` (what it
takes to rebuild the model) and :class:`TrainSettings` (how it trains). Every field is declared
with :func:`setting`, which records beside its default

- ``help``: the one-line help text that ``lpae train --help``, the estimators' docstrings and
  docs/DEVELOPING.md show;
- ``fused``: whether members of a fused group (lpae.fused) may differ in it: ``FREE`` (the fused
  trainer mirrors it per member), ``SHARED`` (members must agree) or ``SHARED_ONE_CLASS`` (must
  agree between one-class runs only);
- ``faces``: where a user sets it: ``"cli"`` (an ``lpae train`` option), ``"grid"`` (an option of a
  study grid's [train] or [[models]] tables) and ``"estimator"`` (a keyword of LpAutoencoder and
  LpAnomalyDetector); settings that no face sets are resolved from the data (``image_shape``) or
  follow another setting (``split_seed`` follows ``seed``);
- ``resume_free``: an interrupted run may resume with another value (device, checkpoint_every);
- ``absent``: what a config.json written before the setting existed meant (its behaviour then),
  when that differs from the new default (continuation: 0, off).

Those faces are derived from this module: :func:`options` lists the flat option names with their
metadata, :func:`with_options` sets flat options on a spec with type checks, and
tests/test_config.py fails when a face misses a field. Adding a run setting means adding its
field here and using it where it acts, nothing else (docs/DEVELOPING.md).

A trained run's ``config.json`` is a :class:`RunConfig`: the resolved spec (criterion spec
canonical, model defaults made explicit, preprocessing statistics fitted on the training split)
plus the versions that wrote it, read back with :meth:`RunConfig.from_json`.

This module imports nothing heavy (no torch, numpy or scikit-learn): the CLI builds its options
from it at start-up. Checks that need the spec registries import them when a setting is checked.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import platform
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from typing import Any

from lpae import __version__

FREE, SHARED, SHARED_ONE_CLASS = "free", "shared", "shared by one-class runs"
FACES = ("cli", "grid", "estimator")
ALL_FACES = frozenset(FACES)

MODELS = ("ae", "dae", "vae")
ARCHS = ("auto", "mlp", "conv")
ACTIVATIONS = ("relu", "gelu", "elu", "tanh", "silu")
DEFAULT_HIDDEN = {"mlp": (256, 128), "conv": (32, 64)}
DEFAULT_CORRUPTION = "gaussian:std=0.1"
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("none", "cosine")
NORMALIZATIONS = ("epoch", "energy", "none")
DEVICES = ("auto", "cpu", "cuda")
DEQUANTIZE_MODES = ("auto", "on", "off")
STREAM_MODES = ("auto", "on", "off")
SIZE_PATTERN = r"([0-9]*\.?[0-9]+(?:E[+-]?[0-9]+)?)\s*([KMGT]?)(I?B)?"


def setting(
    default: Any,
    help: str,
    *,
    fused: str,
    faces: frozenset[str] | set[str] = ALL_FACES,
    follows: str | None = None,
    resume_free: bool = False,
    absent: Any = MISSING,
) -> Any:
    """A dataclass field of the run schema with its metadata (module docstring)."""
    if fused not in (FREE, SHARED, SHARED_ONE_CLASS):
        raise ValueError(f"fused must be FREE, SHARED or SHARED_ONE_CLASS, got {fused!r}")
    metadata = {
        "help": help,
        "fused": fused,
        "faces": frozenset(faces),
        "follows": follows,
        "resume_free": resume_free,
        "absent": default if absent is MISSING else absent,
    }
    return field(default=default, metadata=metadata)


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


SEED_LIMIT = 2**32  # numpy's and scikit-learn's seeds are 32-bit unsigned


def check_seed(what: str, value: Any) -> None:
    """A seed every library that draws with it accepts: an integer with 0 <= seed < 2**32."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{what} must be an integer with 0 <= {what} < 2**32, got {value!r}")


def check_choice(what: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")


def parse_size(text: str) -> int:
    """'2GB', '512MiB', '512M', '3e9' -> bytes; K, M, G and T are binary (1 GB = 2**30 bytes)."""
    match = re.fullmatch(SIZE_PATTERN, str(text).strip().upper())
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"memory budget {text!r}: expected a positive size such as 2GB, 512MB or 3e9")
    return int(float(match[1]) * 1024 ** " KMGT".index(match[2] or " "))


def check_size(what: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a size such as 2GB, got {value!r}")
    parse_size(value)


@dataclass(frozen=True)
class ModelSettings:
    """What it takes to rebuild a model; stored in config.json (lpae.models builds it)."""

    model: str = setting("ae", "ae, dae (denoising) or vae", fused=SHARED)
    arch: str = setting(
        "auto", "mlp, conv, or auto (conv for C x H x W images)", fused=SHARED, faces={"cli", "grid"}
    )
    hidden: tuple[int, ...] | None = setting(
        None, "hidden layer sizes (mlp) or channel counts (conv); none: mlp 256,128, conv 32,64", fused=SHARED
    )
    latent: int = setting(16, "latent code size", fused=SHARED)
    activation: str = setting("relu", "relu, gelu, elu, tanh or silu", fused=SHARED)
    corruption: str | None = setting(
        None,
        "dae input corruption: gaussian:std=S, mask:rate=R or saltpepper:rate=R (gaussian:std=0.1)",
        fused=FREE,
    )
    beta: float = setting(1.0, "vae: weight of the KL term", fused=FREE)
    kl_warmup: int = setting(0, "vae: epochs over which the KL weight ramps up to beta", fused=FREE)
    image_shape: tuple[int, ...] | None = setting(
        None,
        "the (C, H, W) view a conv model puts on flat samples (from the data)",
        fused=SHARED,
        faces=set(),
    )

    def __post_init__(self) -> None:
        check_choice("model", self.model, MODELS)
        check_choice("arch", self.arch, ARCHS)
        if not positive_int(self.latent):
            raise ValueError(f"latent size must be a positive integer, got {self.latent}")
        if self.hidden is not None:
            object.__setattr__(self, "hidden", tuple(self.hidden))
            if not all(positive_int(h) for h in self.hidden):
                raise ValueError(f"hidden sizes must be positive integers, got {list(self.hidden)}")
        check_choice("activation", self.activation, ACTIVATIONS)
        if self.corruption is not None:
            if self.model != "dae":
                raise ValueError(f"corruption applies to model dae only, not {self.model!r}")
            from lpae.corruption import normalize_corruption

            object.__setattr__(self, "corruption", normalize_corruption(self.corruption))
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a number >= 0, got {self.beta}")
        if isinstance(self.kl_warmup, bool) or not isinstance(self.kl_warmup, int) or self.kl_warmup < 0:
            raise ValueError(f"kl_warmup must be an integer number of epochs >= 0, got {self.kl_warmup}")
        if self.model != "vae" and (self.beta != 1.0 or self.kl_warmup != 0):
            raise ValueError(f"beta and kl_warmup apply to model vae only, not {self.model!r}")
        if self.image_shape is not None:
            object.__setattr__(self, "image_shape", tuple(self.image_shape))
            if len(self.image_shape) != 3 or any(s <= 0 for s in self.image_shape):
                raise ValueError(f"image_shape must be (C, H, W) of positive sizes, got {self.image_shape}")

    def resolve(self, shape: Sequence[int], image_shape: Sequence[int] | None = None) -> ModelSettings:
        """Every default made explicit for data whose samples have ``shape``.

        ``image_shape`` is a (C, H, W) view of flat samples that the data set offers; it is used
        only when the arch is conv and the samples are not (C, H, W) already.
        """
        shape = tuple(shape)
        arch = self.arch
        if arch == "auto":
            arch = "conv" if len(shape) == 3 else "mlp"
        view = self.image_shape
        if arch == "conv" and view is None:
            view = conv_view(shape, image_shape)
        hidden = DEFAULT_HIDDEN[arch] if self.hidden is None else self.hidden
        if arch == "conv" and not hidden:
            raise ValueError("arch conv needs at least one channel count in hidden, e.g. 32,64")
        corruption = self.corruption
        if self.model == "dae" and corruption is None:
            corruption = DEFAULT_CORRUPTION
        return dataclasses.replace(self, arch=arch, hidden=hidden, corruption=corruption, image_shape=view)


def conv_view(shape: tuple[int, ...], image_shape: Sequence[int] | None) -> tuple[int, ...] | None:
    """The (C, H, W) a conv model reads samples of ``shape`` as; None when they already are images."""
    if len(shape) == 3:
        return None
    if len(shape) == 2:
        return (1, *shape)
    if image_shape is not None and math.prod(image_shape) == math.prod(shape):
        return tuple(int(s) for s in image_shape)
    raise ValueError(
        f"arch conv needs image data with samples of shape (C, H, W); this data has shape {shape} "
        "and no image shape (use --arch mlp)"
    )


@dataclass(frozen=True)
class TrainSettings:
    """How a model trains (lpae.train.fit)."""

    epochs: int = setting(20, "training epochs", fused=FREE)
    lr: float = setting(1e-3, "learning rate", fused=FREE)
    batch_size: int = setting(128, "batch size", fused=SHARED)
    seed: int = setting(
        0, "random seed (weights, shuffling, noise; the split follows it)", fused=FREE, faces={"cli"}
    )
    weight_decay: float = setting(0.0, "weight decay (decoupled with adamw)", fused=FREE)
    patience: int | None = setting(None, "early-stopping patience in epochs (off by default)", fused=FREE)
    optimizer: str = setting("adam", "adam or adamw", fused=FREE)
    schedule: str = setting("none", "learning-rate schedule: none or cosine (per epoch)", fused=FREE)
    clip: float | None = setting(None, "clip the global gradient norm to this value", fused=FREE)
    criterion_lr: float | None = setting(
        0.1,
        "learning rate of the criterion's learned scale and shape: about how far their log-scale or "
        "shape moves per step, constant, no decay or clipping (lpae.criteria.scale); none: the "
        "network's learning rate and schedule",
        fused=SHARED,
        absent=None,
    )
    normalize: str = setting(
        "epoch",
        "epoch: the objective's scale is fixed per epoch from the previous one: a plain loss steps on "
        "its gradient over its previous epoch's mean, a scale=calibrated likelihood holds the mean "
        "ML scale of its previous epoch's batches (lpae.train); energy: the plain losses only (each "
        "batch's own ML scale for calibrated ones); none: neither",
        fused=FREE,
        absent="none",
    )
    continuation: float = setting(
        0.7,
        "fraction of the epochs over which non-convex criteria move from a convex start to the "
        "target (lpae.criteria.continuation); 0: off",
        fused=FREE,
        absent=0.0,
    )
    dequantize: str = setting(
        "off",
        "uniform noise within each value's bin added to every training batch on quantized data "
        "(lpae.dequantize): off, on, or auto (on for likelihoods on the real line)",
        fused=FREE,
        faces={"cli", "grid"},
    )
    checkpoint_every: int = setting(
        1,
        "epochs between checkpoints in OUT.partial (0: none)",
        fused=FREE,
        faces={"cli", "grid"},
        resume_free=True,
    )
    device: str = setting("auto", "auto (CUDA when present), cpu or cuda", fused=SHARED, resume_free=True)
    stream: str = setting(
        "auto",
        "read training batches from a .npy file on disk, shuffled by seeded blocks (lpae.data.stream), "
        "instead of memory: auto (when the file exceeds --memory-budget), on or off",
        fused=SHARED,
        faces={"cli", "grid"},
        absent="off",
    )
    memory_budget: str = setting(
        "4GB",
        "the data size above which --stream auto streams, e.g. 2GB (K, M, G = 2**10, 2**20, 2**30 bytes)",
        fused=SHARED,
        faces={"cli", "grid"},
        resume_free=True,
    )

    def __post_init__(self) -> None:
        if not positive_int(self.epochs):
            raise ValueError(f"epochs must be a positive integer, got {self.epochs}")
        if not positive_int(self.batch_size):
            raise ValueError(f"batch size must be a positive integer, got {self.batch_size}")
        check_seed("seed", self.seed)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight decay must be a number >= 0, got {self.weight_decay}")
        if self.patience is not None and not positive_int(self.patience):
            raise ValueError(f"patience must be a positive integer, got {self.patience}")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.clip is not None and not (self.clip > 0 and math.isfinite(self.clip)):
            raise ValueError(f"gradient clipping norm must be a positive number, got {self.clip}")
        if self.criterion_lr is not None and not (self.criterion_lr > 0 and math.isfinite(self.criterion_lr)):
            raise ValueError(f"criterion learning rate must be a positive number, got {self.criterion_lr}")
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        if not (isinstance(self.continuation, int | float) and 0 <= self.continuation <= 1):
            raise ValueError(
                f"continuation must be a fraction of the epochs in [0, 1], got {self.continuation}"
            )
        check_choice("dequantize", self.dequantize, DEQUANTIZE_MODES)
        if not (positive_int(self.checkpoint_every) or self.checkpoint_every == 0):
            raise ValueError(f"checkpoint_every must be an integer >= 0, got {self.checkpoint_every}")
        check_choice("device", self.device, DEVICES)
        check_choice("stream", self.stream, STREAM_MODES)
        check_size("memory_budget", self.memory_budget)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunSpec:
    """Every choice of a run: data, criterion, data protocol, model and training settings."""

    data: str = setting(
        "digits", "data set spec or file path, e.g. digits (see `lpae datasets`)", fused=SHARED, faces={"cli"}
    )
    loss: str = setting(
        "l2", "criterion spec, e.g. lp:0.5 (see `lpae losses`)", fused=FREE, faces={"cli", "estimator"}
    )
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    preprocess: str = setting("auto", "standard, minmax, none, or auto (follows the criterion)", fused=FREE)
    nan: str = setting(
        "error",
        "NaN or infinite values in a data file: error, or drop those rows",
        fused=SHARED,
        faces={"cli", "grid"},
    )
    image_size: int | None = setting(
        None, "resize image data to N x N (needed for mixed sizes)", fused=SHARED, faces={"cli", "grid"}
    )
    split_seed: int = setting(
        0, "seed of the train/validation/test split", fused=SHARED_ONE_CLASS, faces=set(), follows="seed"
    )
    val_fraction: float = setting(
        0.15, "fraction of the rows held out for validation", fused=SHARED, faces={"cli", "grid"}
    )
    test_fraction: float = setting(
        0.15, "fraction of the rows held out for testing", fused=SHARED, faces={"cli", "grid"}
    )
    normal_classes: tuple[int, ...] | None = setting(
        None,
        "one-class protocol: train and validate on these classes only, e.g. 0,1,4",
        fused=SHARED,
        faces={"cli"},
    )
    contaminate: float = setting(
        0.0,
        "replace this fraction of training rows by gross outliers (seeded by the split seed)",
        fused=FREE,
        faces={"cli"},
    )
    quantized: str = setting(
        "auto",
        "the lattice of the data's values: auto (as the data set declares it, or detected in a file), "
        "none (continuous densities), or a bin width STEP for every feature (lpae.data.quantization)",
        fused=SHARED,
        faces={"cli", "grid"},
    )
    anomaly_rate: float = setting(
        0.1,
        "one-class protocol: subsample the test split's anomalies to this fraction of its rows "
        "(seeded by the split seed)",
        fused=SHARED,
        faces={"cli", "grid"},
    )

    def __post_init__(self) -> None:
        from lpae.data import check_nan_policy
        from lpae.data.preprocess import METHODS

        check_nan_policy(self.nan)
        check_choice("preprocess", self.preprocess, ("auto", *METHODS))
        from lpae.data.quantization import check_setting

        object.__setattr__(self, "quantized", check_setting(self.quantized))
        if not (isinstance(self.anomaly_rate, int | float) and 0 < self.anomaly_rate < 1):
            raise ValueError(f"anomaly rate must be a fraction in (0, 1), got {self.anomaly_rate}")
        check_seed("split_seed", self.split_seed)
        if self.image_size is not None and not positive_int(self.image_size):
            raise ValueError(f"image_size must be a positive integer, got {self.image_size!r}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < 1):
                raise ValueError(f"{name} must be a fraction of the rows in (0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction must leave rows to train on (sum < 1), got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        if self.normal_classes is not None:
            object.__setattr__(self, "normal_classes", tuple(self.normal_classes))


# --- the flat view the faces use ---------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One run setting as the faces see it: a flat name, where it lives, its type and metadata."""

    name: str
    section: str  # "model" (ModelSettings), "train" (TrainSettings) or "run" (RunSpec itself)
    type: Any  # the field's annotation, resolved (e.g. int | None)
    default: Any
    help: str
    fused: str
    faces: frozenset[str]
    follows: str | None
    resume_free: bool


SECTIONS: dict[str, type] = {"model": ModelSettings, "train": TrainSettings, "run": RunSpec}
NESTED = {"model", "train"}  # RunSpec fields that hold a section, not a setting


def options(face: str | None = None) -> dict[str, Option]:
    """Every run setting by flat name (or those a face sets), in schema order."""
    if face is not None and face not in FACES:
        raise ValueError(f"unknown face {face!r}; allowed: {', '.join(FACES)}")
    return {name: o for name, o in all_options().items() if face is None or face in o.faces}


@functools.cache
def all_options() -> dict[str, Option]:
    """Every run setting by flat name, read once from the dataclasses (callers must not mutate)."""
    found: dict[str, Option] = {}
    for section in ("run", "model", "train"):
        owner = SECTIONS[section]
        hints = typing.get_type_hints(owner)
        for item in dataclasses.fields(owner):
            if section == "run" and item.name in NESTED:
                continue
            meta = item.metadata
            option = Option(
                item.name,
                section,
                hints[item.name],
                item.default,
                meta["help"],
                meta["fused"],
                meta["faces"],
                meta["follows"],
                meta["resume_free"],
            )
            found[item.name] = option
    return found


def coerce(option: Option, value: Any, where: str = "") -> Any:
    """``value`` checked against the option's type and returned in it (1 -> 1.0 for floats, lists
    -> tuples); a TypeError-free ValueError naming the option otherwise."""
    prefix = f"{where}: " if where else ""
    union = isinstance(option.type, types.UnionType)
    kinds = typing.get_args(option.type) if union else (option.type,)
    if value is None:
        if type(None) in kinds:
            return None
        raise ValueError(f"{prefix}{option.name} cannot be empty")
    for kind in kinds:
        if kind is bool and isinstance(value, bool):
            return value
        if isinstance(value, bool):
            continue
        if kind is int and isinstance(value, numbers.Integral):
            return int(value)
        if kind is float and isinstance(value, numbers.Real):
            return float(value)  # 1 and 1.0 must give the same run key
        if kind is str and isinstance(value, str):
            return value
        if typing.get_origin(kind) is tuple and isinstance(value, list | tuple):
            element = typing.get_args(kind)[0]
            if all(isinstance(v, element) and not isinstance(v, bool) for v in value):
                return tuple(value)
    expected = " or ".join(type_word(kind) for kind in kinds if kind is not type(None))
    raise ValueError(f"{prefix}{option.name} = {value!r}: expected {expected}")


def type_word(kind: Any) -> str:
    return "a list of integers" if typing.get_origin(kind) is tuple else getattr(kind, "__name__", str(kind))


def with_options(spec: RunSpec, values: Mapping[str, Any], where: str = "") -> RunSpec:
    """A copy of ``spec`` with flat options set on the section that owns each; a setting that
    follows another (split_seed follows seed) takes its value unless set itself."""
    known = options()
    placed: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for name, value in values.items():
        if name not in known:
            prefix = f"{where}: " if where else ""
            raise ValueError(f"{prefix}unknown setting {name!r}; allowed: {', '.join(sorted(known))}")
        option = known[name]
        placed[option.section][name] = coerce(option, value, where)
    for option in known.values():
        if option.follows is not None and option.follows in values and option.name not in values:
            placed[option.section][option.name] = placed[known[option.follows].section][option.follows]
    model = dataclasses.replace(spec.model, **placed["model"])
    train = dataclasses.replace(spec.train, **placed["train"])
    return dataclasses.replace(spec, model=model, train=train, **placed["run"])


def flat_values(spec: RunSpec) -> dict[str, Any]:
    """Every setting of ``spec`` by flat name (the inverse of :func:`with_options`)."""
    sections = {"run": spec, "model": spec.model, "train": spec.train}
    return {name: getattr(sections[o.section], name) for name, o in options().items()}


# --- config.json --------------------------------------------------------------------------------

FORMAT = "lpae-run"


@dataclass(frozen=True)
class DataRecord:
    """The data part of a run's config: its spec and protocol, resolved against the loaded data."""

    spec: str
    name: str
    shape: tuple[int, ...]
    kind: str
    n_samples: int
    preprocess: dict[str, Any]  # lpae.data.Preprocessor.to_json(), fitted on the training split
    nan: str = "error"
    image_size: int | None = None
    split_seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    normal_classes: tuple[int, ...] | None = None
    contaminate: float = 0.0
    contaminate_seed: int = 0
    anomaly_rate: float | None = None  # one-class test rows: None = every anomaly (configs before 0.2)

    def __post_init__(self) -> None:
        """Checks that keep a damaged or edited config.json from failing later, deep inside numpy."""
        if not isinstance(self.spec, str) or not self.spec:
            raise ValueError(f"data.spec must be a data set spec (a string), got {self.spec!r}")
        if not (isinstance(self.shape, tuple) and self.shape and all(positive_int(s) for s in self.shape)):
            raise ValueError(f"data.shape must be a list of positive integers, got {self.shape!r}")
        check_preprocess_record(self.preprocess, self.shape)


PREPROCESS_KEYS = ("method", "shape", "shift", "scale")


def check_preprocess_record(record: Any, shape: tuple[int, ...]) -> None:
    """data.preprocess of a config.json: a known method and per-feature statistics for ``shape``."""
    from lpae.data.preprocess import METHODS

    if not isinstance(record, Mapping):
        keys = ", ".join(PREPROCESS_KEYS)
        raise ValueError(f"data.preprocess must be an object with {keys}, got {record!r}")
    missing = [key for key in PREPROCESS_KEYS if key not in record]
    if missing:
        raise ValueError(f"data.preprocess is missing {', '.join(missing)}")
    if record["method"] not in METHODS:
        raise ValueError(
            f"data.preprocess.method {record['method']!r} is not a preprocessing method; allowed: "
            f"{', '.join(METHODS)}"
        )
    if not isinstance(record["shape"], list | tuple) or list(record["shape"]) != list(shape):
        raise ValueError(f"data.preprocess.shape {record['shape']!r} differs from data.shape {list(shape)}")
    size = math.prod(shape)
    for key in ("shift", "scale"):
        values = record[key]
        flat = list(flatten(values)) if isinstance(values, list) else None
        if flat is None or len(flat) != size or not all(is_finite_number(v) for v in flat):
            raise ValueError(
                f"data.preprocess.{key} must hold {size} finite numbers (one per feature of shape "
                f"{list(shape)}), got {str(values)[:60]}"
            )


def flatten(values: list[Any]) -> Any:
    """The leaves of nested lists (statistics of image data are stored as nested lists)."""
    for value in values:
        if isinstance(value, list):
            yield from flatten(value)
        else:
            yield value


def is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class RunConfig:
    """A trained run's ``config.json``: every resolved setting and the versions that wrote it."""

    data: DataRecord
    loss: str  # canonical criterion spec
    model: ModelSettings  # resolved: no "auto" and no None default left
    train: TrainSettings
    lpae_version: str = __version__
    torch_version: str = ""
    python_version: str = field(default_factory=platform.python_version)
    fused: bool = False  # trained as a member of a fused group (lpae.fused)
    group: str | None = None  # the fused group's id

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "format": FORMAT,
            "lpae_version": self.lpae_version,
            "torch_version": self.torch_version,
            "python_version": self.python_version,
            "data": as_json(self.data),
            "loss": self.loss,
            "model": as_json(self.model),
            "train": as_json(self.train),
        }
        if self.fused:
            raw.update(fused=True, group=self.group)
        return raw

    @classmethod
    def from_json(cls, raw: Any, where: str = "config.json") -> RunConfig:
        """Read a config.json (fields that older versions did not write take their defaults)."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError(f'{where}: not an lpae run configuration (no "format": "{FORMAT}")')
        version = raw.get("lpae_version", "unknown")
        try:
            missing = [key for key in ("data", "loss", "model", "train") if key not in raw]
            if missing:
                raise ValueError(f"missing key {', '.join(map(repr, missing))}")
            data = read_section(DataRecord, raw["data"], "data")
            model = read_section(ModelSettings, raw["model"], "model")
            train = read_section(TrainSettings, raw["train"], "train")
            extra = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)} - {"format"})
            if extra:
                raise ValueError(f"unknown settings {', '.join(extra)}")
            if not isinstance(raw["loss"], str):
                raise ValueError(f"loss must be a criterion spec (a string), got {raw['loss']!r}")
            return cls(
                data,
                raw["loss"],
                model,
                train,
                lpae_version=str(version),
                torch_version=str(raw.get("torch_version", "")),
                python_version=str(raw.get("python_version", "")),
                fused=bool(raw.get("fused", False)),
                group=raw.get("group"),
            )
        except (KeyError, TypeError, ValueError) as error:
            detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
            if version == __version__:  # written by this version: damaged or edited since
                raise ValueError(
                    f"{where}: {detail}; the file was damaged or edited: restore it or retrain the run"
                ) from None
            raise ValueError(
                f"{where}: written by lpae {version}, which this version ({__version__}) cannot read "
                f"({detail}); retrain the run with this version"
            ) from None


def as_json(value: Any) -> Any:
    """Dataclass values as JSON-ready data (tuples become lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    return value


def read_section(owner: type, raw: Any, section: str = "") -> Any:
    """A dataclass from its JSON: lists of the tuple fields back to tuples, unknown keys an error,
    and each value checked against the field's type (a string where a number belongs is refused
    here, not deep inside the model)."""
    section = section or owner.__name__
    if not isinstance(raw, Mapping):
        raise ValueError(f"{section} must be an object of settings, got {raw!r:.60}")
    names = {f.name for f in dataclasses.fields(owner)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"unknown {section} settings {', '.join(unknown)}")
    hints = typing.get_type_hints(owner)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if typing.get_origin(hints[key]) is not dict:  # data.preprocess: DataRecord checks it
            value = check_type(f"{section}.{key}", hints[key], value)
        values[key] = tuple(value) if isinstance(value, list) else value
    for item in dataclasses.fields(owner):  # written before the setting existed: what it meant then
        if item.name not in values and "absent" in item.metadata:
            values[item.name] = item.metadata["absent"]
    missing = [f.name for f in dataclasses.fields(owner) if f.name not in values and f.default is MISSING]
    if missing:
        raise ValueError(f"{section} is missing {', '.join(f'{section}.{name}' for name in missing)}")
    return owner(**values)


def check_type(name: str, kind: Any, value: Any) -> Any:
    """``value`` if it fits the annotation ``kind`` (JSON form: lists for tuples), else ValueError."""
    option = Option(name, "", kind, None, "", FREE, frozenset(), None, False)
    return coerce(option, value)
