"""NumPy files (.npy, .npz): their readers.

- ``.npy``: one array of samples. ``.npz``: the array ``x`` (or ``key=NAME``) with labels ``y``
  (or ``label=NAME``) when present; for a Keras-style file with ``x_train``/``y_train``,
  ``key=x_train`` takes its labels from ``y_train`` automatically.
- Arrays are read with ``allow_pickle=False``: an object array is an error, never unpickled.
- Which shapes are samples, and the NaN rules, are lpae.data.convert's.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from lpae.data.convert import FileOptions, Raw


def read_npy(path: Path, options: FileOptions, mmap: bool = False) -> Raw:
    """The array of a .npy file; ``mmap``: memory-mapped read-only (lpae.data.stream)."""
    try:
        return Raw(np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None))
    except ValueError as error:
        if "pickle" in str(error):
            raise ValueError(
                f"{path}: holds Python objects (a pickled array); lpae never unpickles, save a numeric array"
            ) from None
        raise ValueError(f"{path}: not a readable .npy file ({error})") from None


def read_npz(path: Path, options: FileOptions) -> Raw:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable .npz archive ({error})") from None
    with archive:
        names = list(archive.files)
        x_name = options.key or "x"
        if x_name not in names:
            raise ValueError(
                f"{path}: no array {x_name!r}; arrays: {', '.join(names) or 'none'} "
                "(name one with :key=NAME, e.g. data.npz:key=x_train)"
            )
        y_name = options.label or ("y" + x_name[1:] if x_name.startswith("x") else None)
        if options.label is not None and options.label not in names:
            raise ValueError(f"{path}: no label array {options.label!r}; arrays: {', '.join(names)}")
        x = archive_array(archive, x_name, path)
        y = archive_array(archive, y_name, path) if y_name is not None and y_name in names else None
    return Raw(
        x,
        labels=y,
        labels_source=f"{path}: array {y_name!r}",
        info={"key": x_name, "label": y_name if y is not None else None},
    )


def archive_array(archive: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as error:
        if "pickle" in str(error):
            raise ValueError(
                f"{path}: array {name!r} holds Python objects; lpae never unpickles, save a numeric array"
            ) from None
        raise ValueError(f"{path}: array {name!r} cannot be read ({error})") from None
