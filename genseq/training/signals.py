"""Ctrl-C and SIGTERM during training: finish the step, save, and stop.

A second Ctrl-C aborts without saving. Under torchrun a signal can reach a process twice within
moments (from the terminal and from the launcher), so repeats within ``REPEAT_S`` are ignored
and the save can finish.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

REPEAT_S = 2.0
STOP_REASONS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


class StopSignals:
    """Installed for the loop's duration (``with StopSignals(...)``)."""

    def __init__(self, stop: Callable[[str], None], say: Callable[[str], None]) -> None:
        self._stop, self._say = stop, say
        self._first: float | None = None
        self._previous: list = []

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_REASONS:
                self._previous.append((sig, signal.signal(sig, self._handle)))
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous:
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame) -> None:
        now = time.monotonic()
        if self._first is not None:
            if signum == signal.SIGINT and now - self._first > REPEAT_S:
                raise KeyboardInterrupt
            return
        self._first = now
        self._say("stopping: finishing the step and saving (Ctrl-C again to abort without saving)")
        self._stop(STOP_REASONS[signum])
