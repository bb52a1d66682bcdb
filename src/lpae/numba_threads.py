"""Run numba parallel kernels on torch's thread count, and keep torch's setting intact.

numba's OpenMP threading layer shares libgomp with torch: the first parallel launch of a numba
kernel in a process resets the OpenMP thread count, and with it ``torch.get_num_threads()``, to
numba's default (every core). A process that pinned torch to one thread (a study worker, a test)
would silently run on all cores afterwards. ``torch_threads()`` sets numba to torch's count for
the launch and puts torch's count back if the launch changed it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba
import torch


@contextmanager
def torch_threads() -> Iterator[None]:
    """Within the block numba kernels use torch's thread count; torch's count is kept after it."""
    threads = torch.get_num_threads()
    most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    numba.set_num_threads(max(1, min(threads, most)))
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
