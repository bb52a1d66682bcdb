"""Spec strings: ``name:arg,key=value``, parsed against a registry and printed canonically.

Components of lpae (criteria, data sets, corruptions, ...) are named by short spec strings:

    lp:0.5                       positional arguments fill the parameters in declared order
    lp:p=0.5,eps=1e-3            or name them
    gennorm:p=learned,scale=calibrated

A :class:`Registry` holds, per kind of component, each name with its typed parameters
(:class:`Param`) and a factory. ``Registry.resolve`` validates a spec and returns the resolved
values; ``Registry.canonical`` prints them back in one canonical form (parameters in declared
order, defaults left out, numbers in their shortest exact form), so that the same object always
prints the same string: specs are the keys of the study's results store.

Every problem raises ``ValueError`` naming the spec, the bad part and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

REQUIRED: Any = object()


@dataclass(frozen=True)
class Spec:
    """A parsed but unvalidated spec: a name, positional and keyword arguments (all strings)."""

    name: str
    args: tuple[str, ...] = ()
    kwargs: tuple[tuple[str, str], ...] = ()


def parse(text: str) -> Spec:
    """Split ``name:arg,key=value`` into its parts; values stay strings until a registry types them."""
    if not isinstance(text, str):
        raise TypeError(f"a spec must be a string, got {type(text).__name__}")
    text = text.strip()
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"spec {text!r}: missing a name before ':'")
    args: list[str] = []
    kwargs: dict[str, str] = {}
    if rest.strip():
        for part in rest.split(","):
            part = part.strip()
            if not part:
                raise ValueError(f"spec {text!r}: empty argument (two commas or a trailing comma)")
            key, eq, value = part.partition("=")
            if eq:
                key, value = key.strip(), value.strip()
                if not key or not value:
                    raise ValueError(f"spec {text!r}: argument {part!r} must be key=value")
                if key in kwargs:
                    raise ValueError(f"spec {text!r}: argument {key!r} given twice")
                kwargs[key] = value
            else:
                if kwargs:
                    raise ValueError(f"spec {text!r}: positional argument {part!r} after a keyword argument")
                args.append(part)
    return Spec(name, tuple(args), tuple(kwargs.items()))


# --- value types ----------------------------------------------------------------------------
# A value type turns the string form into a value (raising ValueError with what is allowed)
# and prints a value back in canonical form.


def format_number(value: float) -> str:
    """Shortest exact text of a number: 2.0 -> '2', 0.5 -> '0.5', 1e-06 -> '1e-06'."""
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(value, int) or (math.isfinite(value) and float(value).is_integer() and abs(value) < 1e15):
        return str(int(value))
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


FLOAT32_TINY = 1.1754943508222875e-38  # the smallest positive normal float32 (numpy.finfo tiny)
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Number:
    """A real number in an interval, optionally also one of a few keywords such as 'learned'."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = True
    high_open: bool = True
    integer: bool = False
    keywords: tuple[str, ...] = ()
    allow_inf: bool = False
    float32: bool = False  # also refuse magnitudes that float32 (the working precision) cannot hold

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        parts = []
        if self.low > -math.inf:
            parts.append(f"{'>' if self.low_open else '>='} {format_number(self.low)}")
        if self.high < math.inf:
            parts.append(f"{'<' if self.high_open else '<='} {format_number(self.high)}")
        text = kind + (" " + " and ".join(parts) if parts else "")
        if self.keywords:
            text += " or " + " or ".join(repr(k) for k in self.keywords)
        return text

    def convert(self, text: str) -> Any:
        if text in self.keywords:
            return text
        try:
            value: float = int(text) if self.integer else float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not {self.describe()}") from None
        if math.isnan(value) or (math.isinf(value) and not self.allow_inf):
            raise ValueError(f"{text!r} is not {self.describe()}")
        # An allowed infinity sits at its unbounded end, so an open infinite bound admits it.
        infinite = math.isinf(value)
        below = value <= self.low if self.low_open and not infinite else value < self.low
        above = value >= self.high if self.high_open and not infinite else value > self.high
        if below or above:
            raise ValueError(f"{text!r} is out of range: expected {self.describe()}")
        if self.float32 and value != 0 and not FLOAT32_TINY <= abs(value) <= FLOAT32_MAX:
            raise ValueError(
                f"{text!r} is beyond float32, the working precision, where it would be "
                f"{'zero or denormal' if abs(value) < 1 else 'infinite'}: give a magnitude between "
                "1.2e-38 and 3.4e38"
            )
        return value

    def format(self, value: Any) -> str:
        return value if isinstance(value, str) else format_number(value)


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of words."""

    options: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(self.options)

    def convert(self, text: str) -> str:
        if text not in self.options:
            raise ValueError(f"{text!r} is not {self.describe()}")
        return text

    def format(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class Text:
    """Any non-empty word (a file name, an image name, a column name)."""

    def describe(self) -> str:
        return "a non-empty string"

    def convert(self, text: str) -> str:
        if not text:
            raise ValueError("expected a non-empty string")
        return text

    def format(self, value: Any) -> str:
        return str(value)


ValueType = Number | Choice | Text


@dataclass(frozen=True)
class Param:
    """One parameter of a registered component."""

    name: str
    type: ValueType
    default: Any = REQUIRED
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def describe(self) -> str:
        default = "required" if self.required else f"default {self.format(self.default)}"
        return f"{self.name}: {self.type.describe()} ({default})"

    def format(self, value: Any) -> str:
        return self.type.format(value)


@dataclass
class Entry(Generic[T]):
    """A registered name: its parameters, factory, one-line summary and free-form tags."""

    name: str
    params: tuple[Param, ...]
    factory: Callable[..., T]
    summary: str = ""
    tags: dict[str, Any] = field(default_factory=dict)

    def signature(self) -> str:
        """``name:required,key=default``; an optional parameter without a default value (an empty
        default, such as mnist's path) in brackets: ``mnist:split=all,[path]``."""
        if not self.params:
            return self.name

        def shown(p: Param) -> str:
            if p.required:
                return p.name
            default = p.format(p.default)
            return f"{p.name}={default}" if default else f"[{p.name}]"

        return self.name + ":" + ",".join(shown(p) for p in self.params)


class Registry(Generic[T]):
    """Names of one kind of component, with typed parameters; builds objects from spec strings."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}

    def register(
        self,
        name: str,
        factory: Callable[..., T],
        params: Iterable[Param] = (),
        summary: str = "",
        **tags: Any,
    ) -> None:
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, tuple(params), factory, summary, dict(tags))

    def alias(self, name: str, target: str) -> None:
        """Make ``name`` stand for the full spec ``target`` (for example l1 -> lp:1)."""
        self._aliases[name] = target

    def names(self) -> list[str]:
        return list(self._entries)

    def aliases(self) -> Mapping[str, str]:
        return dict(self._aliases)

    def entries(self) -> list[Entry[T]]:
        return list(self._entries.values())

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._aliases

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted([*self._entries, *self._aliases]))
            raise ValueError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def resolve(self, text: str) -> tuple[Entry[T], dict[str, Any]]:
        """Validate a spec string; return its entry and every parameter's value, defaults filled."""
        spec = parse(text)
        if spec.name in self._aliases:
            if spec.args or spec.kwargs:
                target = self._aliases[spec.name]
                raise ValueError(
                    f"spec {text!r}: {spec.name!r} is an alias of {target!r} and takes no arguments"
                )
            return self.resolve(self._aliases[spec.name])
        try:
            entry = self.entry(spec.name)
        except ValueError as error:
            raise ValueError(f"spec {text!r}: {error}") from None
        params = entry.params
        if len(spec.args) > len(params):
            raise ValueError(
                f"spec {text!r}: {spec.name} takes at most {len(params)} positional argument(s), "
                f"got {len(spec.args)}; allowed: {self._allowed(entry)}"
            )
        raw: dict[str, str] = {p.name: a for p, a in zip(params, spec.args, strict=False)}
        names = {p.name for p in params}
        for key, value in spec.kwargs:
            if key not in names:
                allowed = self._allowed(entry)
                raise ValueError(
                    f"spec {text!r}: unknown argument {key!r} for {spec.name}; allowed: {allowed}"
                )
            if key in raw:
                raise ValueError(f"spec {text!r}: argument {key!r} given twice")
            raw[key] = value
        values: dict[str, Any] = {}
        for p in params:
            if p.name in raw:
                try:
                    values[p.name] = p.type.convert(raw[p.name])
                except ValueError as error:
                    raise ValueError(f"spec {text!r}: {p.name}={raw[p.name]}: {error}") from None
            elif p.required:
                raise ValueError(f"spec {text!r}: missing argument {p.name} ({p.type.describe()})")
            else:
                values[p.name] = p.default
        return entry, values

    def build(self, text: str, **context: Any) -> T:
        """Build the object a spec names; ``context`` passes extra keyword arguments to the factory."""
        entry, values = self.resolve(text)
        return entry.factory(**values, **context)

    def canonical(self, name: str, values: Mapping[str, Any]) -> str:
        """Canonical text: parameters in declared order, those equal to their default left out."""
        entry = self.entry(name)
        parts = []
        for p in entry.params:
            value = values.get(p.name, p.default)
            if value is REQUIRED:
                raise ValueError(f"{self.kind} {name}: missing {p.name}")
            if p.required or p.format(value) != p.format(p.default):
                parts.append(f"{p.name}={p.format(value)}")
        return name + (":" + ",".join(parts) if parts else "")

    def normalize(self, text: str) -> str:
        """The canonical form of a spec string (validating it on the way)."""
        entry, values = self.resolve(text)
        return self.canonical(entry.name, values)

    @staticmethod
    def _allowed(entry: Entry[T]) -> str:
        return "; ".join(p.describe() for p in entry.params) or "no arguments"
