"""The data-set registry: every built-in or generated data set registers a loader by name.

Entry tags: ``shape`` (one sample), ``kind`` (tabular or image), ``labels`` (bool), and
``requires``: None, or (import name, install command) of an optional package.
"""

from __future__ import annotations

import importlib.util

from lpae.data.dataset import Dataset
from lpae.spec import Registry

DATASETS: Registry[Dataset] = Registry("data set")


def missing_requirement(name: str) -> str | None:
    """The install command for a data set whose optional package is absent, else None."""
    requires = DATASETS.entry(name).tags.get("requires")
    if requires is None:
        return None
    module, command = requires
    return None if importlib.util.find_spec(module) is not None else command
