"""User files as data specs: ``path/to/table.csv:label=species``.

A data spec is a file path when its name part (before the first ':') contains '/', ends in a
known extension, or names a file or folder on disk that is not a registered data set name (a
registered name wins: write ``./digits`` for a folder called digits). A path that contains ':'
is not supported, since ':' starts the options.

Options: ``label=COLUMN`` (csv, tsv, parquet) or ``label=ARRAY`` (npz); ``key=ARRAY`` (npz).

| path | read as |
|---|---|
| .csv, .tsv (.txt with tabs is not guessed) | text table, header detected (lpae.data.delimited) |
| .parquet, .pq | table (pandas + pyarrow) |
| .npy, .npz | arrays (lpae.data.arrays) |
| IDX: *.idx, *-idx3-ubyte, *-ubyte, each optionally .gz | MNIST-style arrays (lpae.data.idx) |
| a folder | PNG / JPEG images (lpae.data.folder) |

Before any format is tried: a missing path, an unreadable file and an empty file are errors.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from lpae.data.arrays import read_npy, read_npz
from lpae.data.dataset import Dataset
from lpae.data.delimited import read_delimited
from lpae.data.folder import read_image_folder
from lpae.data.idx import is_idx_name, read_idx
from lpae.data.tables import table_to_dataset
from lpae.spec import parse

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
ARRAY_SUFFIXES = (".npy", ".npz")
KNOWN = "csv, tsv, parquet, npy, npz, IDX (.idx, -idx3-ubyte, optionally .gz) or a folder of PNG/JPEG images"
OPTIONS = {"label": "label column or array", "key": "array in an .npz file"}


def looks_like_path(name: str, registered: bool) -> bool:
    """Whether a spec's name part is a file path (rules in the module docstring)."""
    if "/" in name or "\\" in name:
        return True
    path = Path(name)
    if path.suffix.lower() in TABLE_SUFFIXES + ARRAY_SUFFIXES or is_idx_name(path):
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


def read_file(spec: str, nan: str = "error", image_size: int | None = None) -> Dataset:
    """Load the file or folder a data spec names."""
    path, options = file_options(spec)
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    if path.is_dir():
        reject_options(path, options, ())
        return read_image_folder(path, nan, image_size)
    check_readable(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        reject_options(path, options, ("label",))
        frame = read_delimited(path, "\t" if suffix == ".tsv" else ",")
        return table_to_dataset(frame, str(path), options.get("label"), nan)
    if suffix in (".parquet", ".pq"):
        reject_options(path, options, ("label",))
        return table_to_dataset(read_parquet(path), str(path), options.get("label"), nan)
    if suffix == ".npy":
        reject_options(path, options, ())
        return read_npy(path, nan)
    if suffix == ".npz":
        reject_options(path, options, ("label", "key"))
        return read_npz(path, nan, options.get("key"), options.get("label"))
    if is_idx_name(path):
        reject_options(path, options, ())
        return read_idx(path, nan)
    raise ValueError(f"{path}: unknown file type {path.suffix or '(no extension)'!r}; lpae reads {KNOWN}")


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


def reject_options(path: Path, options: dict[str, str], allowed: tuple[str, ...]) -> None:
    extra = sorted(set(options) - set(allowed))
    if extra:
        kind = "a folder" if path.is_dir() else f"a {path.suffix or 'IDX'} file"
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes no options"
        raise ValueError(f"{path}: option(s) {', '.join(extra)} do not apply; {kind} {takes}")


def read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"{path}: not a readable parquet file ({error})") from None
