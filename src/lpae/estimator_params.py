"""The scikit-learn parameters of lpae's estimators, derived from the run schema (lpae.config).

scikit-learn reads an estimator's parameters from the signature of its ``__init__`` (get_params,
set_params, clone, GridSearchCV) and expects ``__init__`` to store each argument unchanged under
its own name. :func:`with_parameters` gives a class such an ``__init__``, keyword-only, built from
the run settings that lpae.config marks for the estimators (``options("estimator")``) followed by
the estimator's own parameters, and writes the numpydoc Parameters section of the class docstring
from their help texts. A run setting added to the schema for the estimators is therefore a
parameter of LpAutoencoder and LpAnomalyDetector without a change here or there.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from inspect import Parameter, Signature
from typing import Any, TypeVar

from lpae.config import options

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class EstimatorParameter:
    """One keyword of an estimator's ``__init__``: name, default, numpydoc type and help."""

    name: str
    default: Any
    type: str
    help: str


def type_text(annotation: Any) -> str:
    """numpydoc type words for an annotation: int | None -> 'int or None'."""
    kinds = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    words = []
    for kind in kinds:
        if kind is type(None):
            words.append("None")
        elif typing.get_origin(kind) is tuple:
            words.append("tuple of int")
        else:
            words.append(kind.__name__)
    return " or ".join(words)


def schema_parameters(defaults: Mapping[str, Any]) -> list[EstimatorParameter]:
    """The run settings an estimator takes, with the estimator's own ``defaults`` where given."""
    unknown = sorted(set(defaults) - set(options("estimator")))
    if unknown:
        raise ValueError(f"estimator defaults for settings that are not estimator parameters: {unknown}")
    return [
        EstimatorParameter(o.name, defaults.get(o.name, o.default), type_text(o.type), o.help)
        for o in options("estimator").values()
    ]


def parameters_section(parameters: Sequence[EstimatorParameter]) -> str:
    """A numpydoc Parameters section, indented for a class docstring."""
    lines = ["Parameters", "----------"]
    for p in parameters:
        lines += [f"{p.name} : {p.type}, default={p.default!r}", f"    {p.help}"]
    return "\n".join("    " + line for line in lines) + "\n\n"


def with_parameters(parameters: Sequence[EstimatorParameter]) -> Callable[[T], T]:
    """A class decorator: a keyword-only ``__init__`` storing ``parameters``, and their docs."""
    signature = Signature(
        [
            Parameter("self", Parameter.POSITIONAL_OR_KEYWORD),
            *(Parameter(p.name, Parameter.KEYWORD_ONLY, default=p.default) for p in parameters),
        ]
    )

    def decorate(cls: T) -> T:
        def __init__(self: Any, **values: Any) -> None:
            bound = signature.bind(self, **values)  # a TypeError names an unknown keyword
            bound.apply_defaults()
            for p in parameters:
                setattr(self, p.name, bound.arguments[p.name])

        __init__.__signature__ = signature  # type: ignore[attr-defined]
        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        cls.__init__ = __init__  # type: ignore[misc]
        doc = cls.__doc__ or ""
        section = parameters_section(parameters)
        marker = "    Attributes\n    ----------"
        cls.__doc__ = doc.replace(marker, section + marker) if marker in doc else doc + "\n\n" + section
        return cls

    return decorate
