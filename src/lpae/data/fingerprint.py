"""Content fingerprints of data files and folders: ``sha256:<hex>`` of their bytes.

A study keys each run on a file by the file's fingerprint (lpae.study.files), so that results
of a changed file are never mixed with those of the old one. A file's digest is sha256 of its
bytes, read in 1 MiB chunks (never the whole file in memory); a folder's digest is sha256 over
its files in sorted relative-path order, each contributing its relative path and its own digest
(so renaming, adding or editing any file changes it). The files a registered set reads from a
local folder (``cifar10:path=DIR``, lpae.data.registry's ``files`` tag) are fingerprinted the same
way, over those files alone in the order the loader reads them, each by its name
(:func:`files_fingerprint`): other files in the folder do not count.

Digests are cached in this process by (resolved path, size, modification time in ns): planning
a grid with many runs on one big file hashes it once, and a file edited in place gets a new
modification time and is hashed again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

CHUNK_BYTES = 1 << 20
PREFIX = "sha256:"
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 hex digest of one file's bytes (cached by path, size and mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    found = _DIGESTS.get(key)
    if found is None:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
        found = _DIGESTS[key] = digest.hexdigest()
    return found


def fingerprint(path: Path | str) -> str:
    """``sha256:<hex>`` of a file's bytes, or of a folder's files (module docstring)."""
    path = Path(path)
    try:
        if not path.is_dir():
            return PREFIX + file_digest(path)
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
            digest.update(file_digest(item).encode() + b"\n")
        return PREFIX + digest.hexdigest()
    except OSError as error:
        raise ValueError(
            f"{path}: cannot read the file to fingerprint it ({error.strerror or error})"
        ) from None


def files_fingerprint(paths: Sequence[Path]) -> str:
    """``sha256:<hex>`` over the named files in this order, each contributing its name and digest."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(path.name.encode() + b"\0" + file_digest(path).encode() + b"\n")
        except OSError as error:
            raise ValueError(
                f"{path}: cannot read the file to fingerprint it ({error.strerror or error})"
            ) from None
    return PREFIX + digest.hexdigest()
