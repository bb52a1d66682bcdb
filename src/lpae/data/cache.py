"""The user cache folder for parsed data sets, and atomic .npy writes into it.

The folder is ``$LPAE_CACHE`` when set, else ``$XDG_CACHE_HOME/lpae``, else ``~/.cache/lpae``.
Arrays are stored as plain .npy (never pickled) and written under a temporary name, then renamed,
so a reader never sees a half-written file and two processes filling the cache at once are safe.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lpae.atomic import write_with


def cache_dir() -> Path:
    """The cache folder (not created here)."""
    explicit = os.environ.get("LPAE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lpae"


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (lpae.atomic), creating the folder."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: given a path, np.save would append ".npy"
            np.save(handle, array, allow_pickle=False)

    write_with(path, write)


def load_npy(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """The cached array at ``path`` if it exists with this shape and dtype, else None (stale or broken)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if array.shape != shape or array.dtype != dtype:
        return None
    return array
