"""User files in study grids: resolved paths, content fingerprints, and the changed-file check.

A grid's data entry may be any spec that ``lpae train --data`` takes, a file path with its
options included (``tables/t.csv:label=species``). In a grid:

- a relative path is resolved against the grid file's folder (the current folder for presets
  and grids given as text), and the run records the resolved absolute path with its options in
  sorted order (``/home/me/tables/t.csv:label=species``), so the same file is the same run
  wherever the study is started from;
- each run's identity in the store (its key, lpae.study.grid.run_key) includes the file's
  fingerprint (lpae.data.fingerprint, ``sha256:...`` of its bytes), so results of an edited file
  are never the results of the old one;
- a clean reference (``clean=PATH``, lpae.data.clean) is resolved the same way, and its content
  is part of the fingerprint (``sha256:<data>+sha256:<clean>``);
- a registered set read from a local folder (``cifar10:path=DIR``, ``mnist:path=DIR``; the
  ``files`` tag of lpae.data.registry) is treated the same way: its ``path`` is resolved against
  the grid's folder (the run records ``cifar10:path=/home/me/cifar-10-batches-bin``), and its runs
  are keyed by the fingerprint of the set's files there (every split's, lpae.data.fingerprint);
  "the file" below is then ``NAME:path=FOLDER``, the set's copy in that folder, whatever its split;
- :func:`check_unchanged` refuses to continue a study whose store holds runs of a file whose
  content has changed since, naming the file and what to do (restore the file, discard those
  runs with ``--discard-stale``, or choose another ``--out``); :func:`stale_runs` finds them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lpae.data import DATASETS, PATH_PARAM, is_file_spec, source_files
from lpae.data.files import file_options
from lpae.data.fingerprint import files_fingerprint, fingerprint

FINGERPRINT_KEY = "data_fingerprint"  # the run key's entry holding the file's fingerprint


def resolve_file_spec(text: str, base: Path) -> str:
    """The canonical spec of a file spec: absolute path (against ``base``), options sorted.

    Raises ValueError when an option is unknown or the path does not exist."""
    path, found = file_options(text)
    path = resolved(path, base)
    if not path.exists():
        raise ValueError(f"data {text!r}: {path}: no such file or folder")
    if "clean" in found:
        clean = resolved(Path(found["clean"]), base)
        if not clean.is_file():
            raise ValueError(f"data {text!r}: clean reference {clean}: no such file")
        found["clean"] = str(clean)
    options = ",".join(f"{key}={value}" for key, value in sorted(found.items()))
    return f"{path}:{options}" if options else str(path)


def local_folder(spec: str) -> tuple[str, dict[str, Any]] | None:
    """(name, values) of a registered spec that reads a local folder (``cifar10:path=DIR``), else
    None. Raises ValueError for a spec the registry refuses."""
    entry, values = DATASETS.resolve(spec)
    if "files" not in entry.tags or not values.get(PATH_PARAM):
        return None
    return entry.name, values


def resolve_folder_spec(name: str, values: dict[str, Any], base: Path) -> str:
    """The canonical spec of a registered set read from a folder, its path made absolute against
    ``base``. Raises ValueError when the folder does not exist."""
    folder = resolved(Path(values[PATH_PARAM]), base)
    if not folder.is_dir():
        raise ValueError(f"data set {name!r}: path={values[PATH_PARAM]}: {folder}: no such folder")
    return DATASETS.canonical(name, {**values, PATH_PARAM: str(folder)})


def resolved(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def file_fingerprint(spec: str) -> str:
    """The fingerprint of the file a canonical file spec names (and of its clean reference), or of
    the files a registered set reads from its folder (``cifar10:path=DIR``)."""
    if not is_file_spec(spec):
        folder = local_folder(spec)
        if folder is None:
            raise ValueError(f"data {spec!r} reads no local files to fingerprint")
        files = source_files(*folder)
        return files_fingerprint(files or [])
    path, found = file_options(spec)
    data = fingerprint(path)
    return data if "clean" not in found else f"{data}+{fingerprint(Path(found['clean']))}"


def spec_path(spec: str) -> str:
    """The path part of a canonical file spec; ``NAME:path=FOLDER`` of a registered set read from a
    folder (``cifar10:path=DIR,split=train``: its split left out, since every split's files are
    fingerprinted together); else the spec itself."""
    if is_file_spec(spec):
        return spec.partition(":")[0]
    try:
        folder = local_folder(spec)
    except ValueError:  # a stored spec the registry no longer knows
        return spec
    return spec if folder is None else f"{folder[0]}:{PATH_PARAM}={folder[1][PATH_PARAM]}"


def stale_runs(stored: Iterable[tuple[str, str]], planned: Mapping[str, str]) -> list[str]:
    """The stored runs (``(run_id, key)`` pairs) keyed by a file that now holds other content
    (``planned``: file path -> its fingerprint now)."""
    stale = []
    for run_id, key in stored:
        spec = json.loads(key)
        old, new = spec.get(FINGERPRINT_KEY), planned.get(spec_path(str(spec.get("data", ""))))
        if old is not None and new is not None and new != old:
            stale.append(run_id)
    return stale


def check_unchanged(stored: Iterable[tuple[str, str]], planned: Mapping[str, str], out: Path) -> None:
    """Raise ValueError when a stored run was trained on a file now holding other content,
    naming the file (or its clean reference) and what to do."""
    stored = list(stored)
    stale = set(stale_runs(stored, planned))
    if not stale:
        return
    specs = [json.loads(key) for run_id, key in stored if run_id in stale]
    spec = specs[0]
    path = spec_path(str(spec["data"]))
    n_here = sum(spec_path(str(s["data"])) == path for s in specs)
    files = {spec_path(str(s["data"])) for s in specs}
    elsewhere = f"; {len(stale)} in all, on {len(files)} changed files" if len(files) > 1 else ""
    olds, news = str(spec[FINGERPRINT_KEY]).split("+"), planned[path].split("+")
    part = 0 if olds[0] != news[0] or len(olds) != len(news) else 1
    if part:  # the data file is as it was: its clean reference changed
        path = str(file_options(str(spec["data"]))[1].get("clean"))
    raise ValueError(
        f"{path}: the file changed since the study in {out} trained on it "
        f"(fingerprint {short(olds[part])} then, {short(news[part])} now); restore the file to "
        f"resume that study, pass --discard-stale to delete its {n_here} run(s) on the old content "
        f"and train them anew{elsewhere}, or run the grid with another --out"
    )


def short(fingerprint_text: str) -> str:
    """'sha256:0123456789ab' (the first 12 hex digits) for messages."""
    return fingerprint_text[: len("sha256:") + 12]
