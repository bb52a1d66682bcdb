"""SIGINT and SIGTERM as one exception, so that an interrupted command can stop cleanly.

Inside :func:`interruptible` the first SIGINT or SIGTERM raises :class:`Interrupted` in the main
thread (a ``KeyboardInterrupt``, so ``except Exception`` blocks, such as the one that records a
failing run as "failed", let it through, and every ``finally`` and staging folder of
lpae.atomic cleans up on its way out). Later signals are ignored while the command winds down.
Inside :func:`deferred` (a store write that must not be cut in half) a signal is held and raised
when the block ends.

The exit status of an interrupted command is 128 + the signal number: 130 for SIGINT, 143 for
SIGTERM (the shell's convention). Outside :func:`interruptible` Python's own handlers apply.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which and ``exit_code`` is 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    active = False  # inside interruptible()
    raised = False  # the one Interrupted has been raised: ignore later signals
    deferring = 0  # depth of deferred() blocks
    pending: int | None = None  # a signal held by deferred()
    signum: int | None = None  # the signal of the one Interrupted raised


_state = _State()


def _handle(signum: int, frame: FrameType | None) -> None:
    if _state.raised or _state.pending is not None:
        return
    if _state.deferring:
        _state.pending = signum
        return
    _state.raised, _state.signum = True, signum
    raise Interrupted(signum)


def as_interrupted(error: KeyboardInterrupt) -> KeyboardInterrupt:
    """``error``, or the :class:`Interrupted` it stands for: an extension that checks for signals
    while it waits (Ray's ``ray.wait``, ``ray.get``) raises a plain KeyboardInterrupt in place of
    the exception our handler raised."""
    if isinstance(error, Interrupted) or not (_state.active and _state.raised) or _state.signum is None:
        return error
    return Interrupted(_state.signum)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` within (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _handle) for signum in SIGNALS}
    _state.active, _state.raised, _state.pending, _state.signum = True, False, None, None
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _state.active, _state.raised, _state.pending, _state.signum = False, False, None, None


@contextmanager
def deferred() -> Iterator[None]:
    """Hold a signal that arrives within until the block has ended, then raise it."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    if not _state.deferring and _state.pending is not None and _state.active:
        signum, _state.pending = _state.pending, None
        _state.raised, _state.signum = True, signum
        raise Interrupted(signum)


def ignore_in_worker() -> None:
    """For worker processes: ignore SIGINT and SIGTERM; the study process stops its workers.

    A terminal's Ctrl-C reaches every process of the group, the workers included; their units
    are abandoned by the study process (lpae.study.executors), not recorded as failed."""
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
