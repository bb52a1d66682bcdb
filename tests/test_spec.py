"""Spec parsing, validation messages and canonical printing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lpae.spec import Choice, Number, Param, Registry, format_number, parse


def make_registry() -> Registry[dict]:
    registry: Registry[dict] = Registry("thing")
    registry.register(
        "lp",
        lambda **kw: kw,
        [Param("p", Number(low=0)), Param("eps", Number(low=0, low_open=False, keywords=("auto",)), "auto")],
    )
    registry.register("mode", lambda **kw: kw, [Param("kind", Choice(("a", "b")), "a")])
    registry.alias("l1", "lp:1")
    return registry


def test_parse_positional_and_keyword() -> None:
    spec = parse("lp:0.5,eps=1e-3")
    assert spec.name == "lp" and spec.args == ("0.5",) and spec.kwargs == (("eps", "1e-3"),)
    assert parse("digits").args == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "missing a name"),
        ("lp:0.5,,eps=1", "empty argument"),
        ("lp:eps=1,0.5", "positional argument '0.5' after a keyword"),
        ("lp:p=1,p=2", "given twice"),
        ("lp:=3", "must be key=value"),
    ],
)
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_resolve_fills_defaults_and_types() -> None:
    entry, values = make_registry().resolve("lp:0.5")
    assert entry.name == "lp" and values == {"p": 0.5, "eps": "auto"}


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("lp:-1", ["'lp:-1'", "p=-1", "> 0"]),
        ("lp:0", ["'lp:0'", "out of range", "> 0"]),
        ("lp:abc", ["'lp:abc'", "not a number > 0"]),
        ("lp:nan", ["not a number"]),
        ("lp:1,q=2", ["unknown argument 'q'", "allowed: p:"]),
        ("lp", ["missing argument p"]),
        ("nosuch", ["unknown thing 'nosuch'", "known: l1, lp, mode"]),
        ("mode:c", ["'c' is not one of a, b"]),
        ("l1:3", ["alias of 'lp:1'"]),
        ("lp:1,2,3", ["at most 2 positional"]),
    ],
)
def test_resolve_errors_name_spec_part_and_allowed(text: str, fragments: list[str]) -> None:
    with pytest.raises(ValueError) as error:
        make_registry().resolve(text)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("lp:0.5", "lp:p=0.5"),
        ("lp:p=0.50", "lp:p=0.5"),
        ("lp:2.0", "lp:p=2"),
        ("l1", "lp:p=1"),
        ("lp:1,eps=auto", "lp:p=1"),
        ("lp:1,eps=0.001", "lp:p=1,eps=0.001"),
        ("lp:1,eps=1e-3", "lp:p=1,eps=0.001"),
        ("mode", "mode"),
        ("mode:b", "mode:kind=b"),
    ],
)
def test_canonical_printing(text: str, canonical: str) -> None:
    registry = make_registry()
    assert registry.normalize(text) == canonical
    assert registry.normalize(canonical) == canonical  # idempotent


@given(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False))
def test_number_round_trip(value: float) -> None:
    registry = make_registry()
    text = registry.normalize(f"lp:{value!r}")
    assert registry.resolve(text)[1]["p"] == value
    assert registry.normalize(text) == text


def test_format_number() -> None:
    assert format_number(2.0) == "2"
    assert format_number(0.5) == "0.5"
    assert format_number(1e-6) == "1e-06"


def test_register_twice_is_an_error() -> None:
    registry = make_registry()
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("lp", dict)


def test_allowed_infinity_at_an_open_infinite_bound() -> None:
    number = Number(allow_inf=True)
    assert number.convert("inf") == float("inf") and number.convert("-inf") == float("-inf")
    assert Number(low=0, allow_inf=True).convert("inf") == float("inf")
    with pytest.raises(ValueError):
        Number(low=0, allow_inf=True).convert("-inf")
    with pytest.raises(ValueError):
        Number().convert("inf")
