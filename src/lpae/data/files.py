"""User files as data specs: ``path/to/table.csv:label=species``.

A data spec is a file path when its name part (before the first ':') contains '/', ends in a
known extension, or names a file or folder on disk that is not a registered data set name (a
registered name wins: write ``./digits`` for a folder called digits). A path that contains ':'
is not supported, since ':' starts the options.

Options: ``label=COLUMN`` (csv, tsv, parquet) or ``label=ARRAY`` (npz); ``key=ARRAY`` (npz);
``clean=PATH`` and ``noise=FAMILY`` (any format: a clean reference, lpae.data.clean);
``quantized=auto|none|STEP`` (every format): the lattice the values lie on, detected by default
(lpae.data.quantization).

| path | reader | reads |
|---|---|---|
| .csv, .tsv (.txt with tabs is not guessed) | delimited.read_csv, read_tsv | table, header detected |
| .parquet, .pq | read_parquet (below) | table (pandas + pyarrow) |
| .npy, .npz | arrays.read_npy, read_npz | arrays |
| IDX: *.idx, *-idx3-ubyte, *-ubyte, each optionally .gz | idx.read_idx | MNIST-style arrays |
| a folder | folder.read_image_folder | PNG / JPEG images |

:func:`read_file` reads a spec top to bottom: split the spec into path and options; a missing
path, an unreadable file and an empty file are errors; look the format up in :data:`FORMATS`;
refuse options the format does not take; the format's reader returns a table or an array
(a :class:`~lpae.data.convert.Raw`); :func:`~lpae.data.convert.to_dataset` applies every check
(labels, non-numeric and constant columns, NaN policy, shapes) and returns the Dataset.

To add a format: write one small reader ``read_xyz(path: Path, options: FileOptions) -> Raw``
that returns the file's table (a DataFrame, with ``label_column=options.label``) or its array of
samples (with ``labels`` when the format has them), raising ValueError naming the path for a file
it cannot parse; then add one line to :data:`FORMATS`, e.g.
``".xyz": Format("xyz", read_xyz, ("label",))``. Nothing else changes: the suffix makes a spec
a file path, and every check and message of lpae.data.convert applies to the new format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from lpae.data.arrays import read_npy, read_npz
from lpae.data.clean import CLEAN_OPTIONS, attach_clean, take_reference
from lpae.data.convert import FileOptions, Raw, to_dataset
from lpae.data.dataset import Dataset
from lpae.data.delimited import read_csv, read_tsv
from lpae.data.folder import read_image_folder
from lpae.data.idx import is_idx_name, read_idx
from lpae.data.quantization import QUANTIZED_HELP, QUANTIZED_OPTION
from lpae.spec import parse

OPTIONS = {
    "label": "label column or array",
    "key": "array in an .npz file",
    QUANTIZED_OPTION: QUANTIZED_HELP,
    **CLEAN_OPTIONS,
}
FOLDER = "folder"  # FORMATS key of a folder; every other key but IDX is a suffix, with its dot
IDX = "idx"  # FORMATS key of IDX files, found by name (train-images-idx3-ubyte.gz has no one suffix)


def read_parquet(path: Path, options: FileOptions) -> Raw:
    try:
        return Raw(pd.read_parquet(path), label_column=options.label)
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"{path}: not a readable parquet file ({error})") from None


@dataclass(frozen=True)
class Format:
    """A file format: its name in messages, its reader, and the spec options it takes."""

    name: str
    read: Callable[[Path, FileOptions], Raw]
    options: tuple[str, ...] = ()


FORMATS: dict[str, Format] = {
    ".csv": Format("csv", read_csv, ("label", QUANTIZED_OPTION)),
    ".tsv": Format("tsv", read_tsv, ("label", QUANTIZED_OPTION)),
    ".parquet": Format("parquet", read_parquet, ("label", QUANTIZED_OPTION)),
    ".pq": Format("parquet", read_parquet, ("label", QUANTIZED_OPTION)),
    ".npy": Format("npy", read_npy, (QUANTIZED_OPTION,)),
    ".npz": Format("npz", read_npz, ("label", "key", QUANTIZED_OPTION)),
    IDX: Format("IDX (.idx, -idx3-ubyte, optionally .gz)", read_idx, (QUANTIZED_OPTION,)),
    FOLDER: Format("a folder of PNG/JPEG images", read_image_folder, (QUANTIZED_OPTION,)),
}


def read_file(spec: str, nan: str = "error", image_size: int | None = None, mmap: bool = False) -> Dataset:
    """Load the file or folder a data spec names (the steps in the module docstring).

    ``mmap``: a .npy file's samples stay memory-mapped (lpae.data.stream): they must be float32,
    with no constant column and no row to drop, since any of these would copy them into memory."""
    path, options = file_options(spec)
    reference = take_reference(options, spec)
    if mmap:
        return mapped_npy(path, options, nan, reference is not None)
    raw = read_raw(path, options, image_size)
    dataset = to_dataset(raw, str(path), nan, options.get(QUANTIZED_OPTION))
    if reference is not None:
        array_key = {"key": options["key"]} if "key" in options else {}
        attach_clean(dataset, raw, reference, lambda clean: read_raw(clean, array_key, image_size), str(path))
    return dataset


def mapped_npy(path: Path, options: dict[str, str], nan: str, has_reference: bool) -> Dataset:
    """The Dataset of a memory-mapped float32 .npy file (read_file's ``mmap``), every check of
    lpae.data.convert applied chunk by chunk; whatever would copy the samples is an error."""
    if path.suffix.lower() != ".npy" or has_reference:
        raise ValueError(f"{path}: streaming reads .npy files (without clean=); use --stream off here")
    check_readable(path)
    reject_options(path, options, FORMATS[".npy"].options)
    raw = read_npy(path, FileOptions(), mmap=True)
    if not isinstance(raw.values, np.ndarray) or raw.values.dtype != np.float32 or raw.values.ndim != 2:
        found = getattr(raw.values, "dtype", type(raw.values).__name__)
        shape = getattr(raw.values, "shape", "?")
        raise ValueError(
            f"{path}: streaming reads float32 matrices (N, D); this file holds {found} of shape {shape} "
            "(save it with x.astype(numpy.float32), or use --stream off)"
        )
    dataset = to_dataset(raw, str(path), nan, options.get(QUANTIZED_OPTION))
    if dataset.info.get("dropped_constant") or dataset.info.get("dropped_rows"):
        raise ValueError(
            f"{path}: has constant columns or rows with NaN to drop, which streaming cannot do without "
            "copying the data into memory; drop them from the file, or use --stream off"
        )
    return dataset


def read_raw(path: Path, options: dict[str, str], image_size: int | None = None) -> Raw:
    """What the reader of a file's format finds in it (after the checks every file gets)."""
    if not path.exists():
        if path.is_symlink():
            raise ValueError(
                f"{path}: a symbolic link that leads nowhere (a loop, or its target is missing); "
                "point it at the data file or give the file itself"
            )
        raise ValueError(f"{path}: no such file or folder")
    if not path.is_dir():
        check_readable(path)
    file_format = FORMATS.get(format_key(path))
    if file_format is None:
        raise ValueError(
            f"{path}: unknown file type {path.suffix or '(no extension)'!r}; lpae reads {known_formats()}"
        )
    reject_options(path, options, file_format.options)
    quantized = options.get(QUANTIZED_OPTION)
    return file_format.read(
        path, FileOptions(options.get("label"), options.get("key"), image_size, quantized)
    )


def looks_like_path(name: str, registered: bool) -> bool:
    """Whether a spec's name part is a file path (rules in the module docstring)."""
    if "/" in name or "\\" in name:
        return True
    path = Path(name)
    if path.suffix.lower() in FORMATS or is_idx_name(path):
        return True
    return not registered and path.exists()


def file_options(spec: str) -> tuple[Path, dict[str, str]]:
    """Split ``path:key=value,...`` into the path and its options."""
    name, _, rest = spec.partition(":")
    options = dict(parse("file:" + rest).kwargs) if rest.strip() else {}
    if rest.strip() and parse("file:" + rest).args:
        raise ValueError(
            f"data spec {spec!r}: options after ':' must be key=value ({', '.join(OPTIONS)}); "
            "a path containing ':' is not supported"
        )
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        allowed = "; ".join(f"{k}=: {v}" for k, v in OPTIONS.items())
        raise ValueError(f"data spec {spec!r}: unknown option(s) {', '.join(unknown)}; allowed: {allowed}")
    return Path(name.strip()), options


def check_readable(path: Path) -> None:
    """Open the file once: permission problems and empty files are reported before parsing."""
    try:
        with open(path, "rb") as handle:
            first = handle.read(1)
    except PermissionError:
        raise ValueError(f"{path}: cannot read the file (permission denied)") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read the file ({error.strerror or error})") from None
    if not first:
        raise ValueError(f"{path}: the file is empty")


def format_key(path: Path) -> str:
    """The FORMATS key of an existing path: FOLDER, its suffix, or IDX for an IDX file name."""
    if path.is_dir():
        return FOLDER
    suffix = path.suffix.lower()
    return IDX if suffix not in FORMATS and is_idx_name(path) else suffix


def known_formats() -> str:
    """'csv, tsv, ... or a folder of PNG/JPEG images': every format's name, once, for a message."""
    names = dict.fromkeys(file_format.name for key, file_format in FORMATS.items() if key != FOLDER)
    return ", ".join(names) + " or " + FORMATS[FOLDER].name


def reject_options(path: Path, options: dict[str, str], allowed: tuple[str, ...]) -> None:
    extra = sorted(set(options) - set(allowed))
    if extra:
        kind = "a folder" if path.is_dir() else f"a {path.suffix or 'IDX'} file"
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes no options"
        raise ValueError(f"{path}: option(s) {', '.join(extra)} do not apply; {kind} {takes}")
