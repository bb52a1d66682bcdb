"""The data-set registry: every built-in or generated data set registers a loader by name.

Entry tags: ``shape`` (one sample), ``kind`` (tabular or image), ``labels`` (bool), ``requires``:
None, or (import name, install command) of an optional package; and ``files`` for a set read from
a user's local copy of its files (``cifar10:path=DIR``): a function of that folder that returns
the paths of every file of the set there (all its splits; raising ValueError naming a missing
one). Such a set names its folder by the parameter ``path`` (PATH_PARAM); a study resolves it
against the grid's folder and keys its runs by those files' fingerprint (lpae.study.files), as
it does for a file spec. A set given a path needs no optional package.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lpae.data.dataset import Dataset
from lpae.spec import Registry

DATASETS: Registry[Dataset] = Registry("data set")
PATH_PARAM = "path"  # the parameter naming a local folder of a set's files


def missing_requirement(name: str, values: Mapping[str, Any] | None = None) -> str | None:
    """The install command for a data set whose optional package is absent, else None (also when
    ``values`` name a local folder of its files, which the package would otherwise provide)."""
    requires = DATASETS.entry(name).tags.get("requires")
    if requires is None or (values is not None and values.get(PATH_PARAM)):
        return None
    module, command = requires
    return None if importlib.util.find_spec(module) is not None else command


def source_files(name: str, values: Mapping[str, Any]) -> list[Path] | None:
    """Every file of a registered set in the local folder these values name (the ``files`` tag),
    or None when they name none (a package's copy, generated data)."""
    files = DATASETS.entry(name).tags.get("files")
    folder = values.get(PATH_PARAM)
    return None if files is None or not folder else files(str(folder))
