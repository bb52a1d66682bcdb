"""Element-wise kernels compiled by torch.compile (inductor) on CPU, lazily, with an eager fallback.

The learned-shape likelihoods need exp, log or log1p of every residual; numba cannot vectorise
them (pip's llvmlite has no SVML), while inductor emits vectorised C++ (at::vec, AVX2/AVX-512)
and fuses the pointwise work with the per-row sums into one sweep over x and x_hat. A
:class:`LazyKernel` wraps one small pure-torch function (a forward or a backward pass of a
criterion's custom ``autograd.Function``) and compiles it on first use with
``torch.compile(fn, dynamic=True, fullgraph=True)``: batch and feature sizes are symbolic, so
new shapes do not recompile; a new dtype (float64) compiles once more.

Compilation costs seconds (10-50 s cold on the 2-core build machines at load up to 9, 164 s
measured at load 25; 1-10 s with inductor's on-disk cache warm, bench/README.md), so it is
worth it only for long runs on large batches. The environment variable ``LPAE_COMPILE``, read
once per process at the first kernel call, decides:

- ``auto`` (default): a call on CPU with at least COMPILE_MIN_ELEMENTS elements is counted, and
  the kernel compiles at the COMPILE_AFTER_CALLS-th such call (a training run on large batches;
  not one evaluation pass, not tests on small tensors);
- ``1`` / ``on``: compile at the first call on CPU, whatever its size (benchmarks, tests);
- ``0`` / ``off``: never.

Any exception while compiling or running the compiled kernel (no C++ compiler, a failed build,
an unsupported input) is logged once as a warning, the kernel is marked failed for the rest of
the process, and the same function runs eagerly, which gives the same values. The callers keep
their own eager route (lpae.criteria.power.LearnedPowerSum, the autograd chain of Student-t)
for every call that does not take the compiled one.

Inductor writes its cache to ``$TORCHINDUCTOR_CACHE_DIR``, by default /tmp/torchinductor_$USER,
never inside the repository or an output folder. CUDA tensors stay on the eager routes (inductor
would compile them through triton; not built or measured here, the build machines have no GPU).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

COMPILE_ENV = "LPAE_COMPILE"
COMPILE_MIN_ELEMENTS = 1 << 20  # elements of one call (4096 x 784 = 3.2M; a 256 x 784 batch is 0.2M)
COMPILE_AFTER_CALLS = 50  # large calls before compiling in auto mode: 50 calls at 3.2M elements
# save about 0.2-0.4 s against a 5-20 s compile; a long run makes thousands
MODES = ("auto", "on", "off")
COMPILED_DTYPES = (torch.float32, torch.float64)

log = logging.getLogger(__name__)


def compile_mode() -> str:
    """``auto``, ``on`` or ``off`` from $LPAE_COMPILE (module docstring); ValueError for anything else."""
    raw = os.environ.get(COMPILE_ENV, "auto").strip().lower()
    mode = {"1": "on", "0": "off", "": "auto"}.get(raw, raw)
    if mode not in MODES:
        raise ValueError(f"{COMPILE_ENV}={raw!r}: use auto, 1 (on) or 0 (off)")
    return mode


_mode_in_use: list[str] = []  # compile_mode() read once, at the first kernel decision


def mode_in_use() -> str:
    """The mode kernels follow: $LPAE_COMPILE as first read in this process, or compile_setting's."""
    if not _mode_in_use:
        _mode_in_use.append(compile_mode())
    return _mode_in_use[0]


@contextmanager
def compile_setting(mode: str) -> Iterator[None]:
    """Within the block the kernels follow ``mode`` (tests, benchmarks), and $LPAE_COMPILE says it
    to child processes; both come back after."""
    if mode not in MODES:
        raise ValueError(f"compile_setting: mode must be one of {MODES}, got {mode!r}")
    saved_env, saved_mode = os.environ.get(COMPILE_ENV), mode_in_use()
    os.environ[COMPILE_ENV] = mode
    _mode_in_use[0] = mode
    try:
        yield
    finally:
        _mode_in_use[0] = saved_mode
        if saved_env is None:
            del os.environ[COMPILE_ENV]
        else:
            os.environ[COMPILE_ENV] = saved_env


class LazyKernel:
    """One pure-torch function, compiled on first use when :meth:`wanted` says so (module docstring)."""

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self.function = function
        self.compiled: Callable[..., Any] | None = None
        self.failed = False
        self.large_calls = 0
        self.compile_seconds: float | None = None  # wall time of the first compiled call

    def wanted(self, like: Tensor) -> bool:
        """Should this call, on tensors like ``like``, take the compiled kernel? Counts large calls."""
        mode = "off" if self.failed else mode_in_use()
        if mode == "off" or (mode == "auto" and like.numel() < COMPILE_MIN_ELEMENTS):
            return False  # the common case of small batches first: this runs on every call
        if like.device.type != "cpu" or like.dtype not in COMPILED_DTYPES:
            return False
        if mode == "on":
            return True
        self.large_calls += 1
        return self.large_calls >= COMPILE_AFTER_CALLS

    def __call__(self, *args: Any) -> Any:
        """The compiled function's result, or the eager function's after any failure of the compiled one."""
        if not self.failed:
            try:
                if self.compiled is None:
                    self.compiled = torch.compile(self.function, dynamic=True, fullgraph=True)
                if self.compile_seconds is None:
                    start = time.perf_counter()
                    result = self.compiled(*args)
                    self.compile_seconds = time.perf_counter() - start
                    return result
                return self.compiled(*args)
            except Exception as error:  # any compiler or runtime failure: fall back, once and for all
                self.failed = True
                log.warning(
                    "lpae: compiled kernel %s failed (%s: %s); running it eagerly from now on (%s=0 skips "
                    "compilation)",
                    self.name,
                    type(error).__name__,
                    str(error).splitlines()[0] if str(error) else "",
                    COMPILE_ENV,
                )
        return self.function(*args)

    def reset(self) -> None:
        """Forget the compiled function, the failure mark and the call count (tests)."""
        self.compiled, self.failed, self.large_calls, self.compile_seconds = None, False, 0, None
