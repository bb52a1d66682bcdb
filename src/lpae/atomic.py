"""Atomic writes: a file or a folder appears under its final name complete, or not at all.

Every writer here fills a temporary sibling of the target (a hidden name in the same folder, so
on the same file system) and then renames it into place with ``os.replace``, which is atomic on
POSIX: a reader, or a process that kills the writer at any moment, sees the old file or the new
one, never a mix. On any error, ``KeyboardInterrupt`` included, the temporary is removed and the
old file is left as it was.

Temporaries are created private (``mkstemp``: 0o600, ``mkdtemp``: 0o700); before the rename they
get the permissions a plain ``open`` or ``mkdir`` would give (0o666 or 0o777 less the umask).
Nothing is fsynced: the guarantee is against interrupted processes, not against power loss.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def write_with(path: Path | str, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary)`` to fill a new file, then rename it onto ``path``; returns ``path``.

    ``write`` gets the temporary's path (it exists, empty) and may open it or hand it to a library
    (``figure.savefig``, ``frame.to_parquet``, ``safetensors``); the parent folder is created.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; give the name of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path | str, data: Any) -> Path:
    """Write ``data`` as indented JSON (NaN and infinities allowed) to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=2, allow_nan=True) + "\n")


@contextmanager
def staging_dir(out: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out``, on error it vanishes.

    Raises ValueError when ``out`` exists and ``overwrite`` is False. When overwriting, the old
    folder is deleted just before the rename (``os.replace`` cannot replace a non-empty folder).
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: already exists (choose another --out, or pass --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
