"""One helper thread for work that releases the GIL, such as hashing the sources.

Tokenizing holds the GIL while numpy counts and looks up ids, but hashlib releases it, so on a
second core the first pass hashes its blocks at no cost in wall time (BENCHMARKS.md: 0.14 s of
1.9 s at the character level, 200 MB). Jobs run one at a time in the order they were given;
at most ``max_waiting`` wait, so memory stays bounded. An error in a job is raised by a later
``submit`` (once ``max_waiting`` newer jobs wait) or by ``wait``. (Writing the token files
there as well was measured and did not pay.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class Background:
    def __init__(self, max_waiting: int = 4) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="genseq-background")
        self._waiting: deque[Future] = deque()
        self._max_waiting = max_waiting

    def submit(self, job: Callable, *args) -> None:
        """Run ``job(*args)`` after the jobs before it. The arguments must not change until
        then: callers hand over buffers they no longer touch."""
        self._waiting.append(self._thread.submit(job, *args))
        while len(self._waiting) > self._max_waiting:
            self._waiting.popleft().result()

    def wait(self) -> None:
        """Return when every job given so far has run; raise the first error among them."""
        while self._waiting:
            self._waiting.popleft().result()

    def close(self) -> None:
        """Stop the thread, dropping jobs not started (on an error path nobody waits for
        them); it raises none of their errors, so it can run in a ``finally``."""
        self._thread.shutdown(wait=True, cancel_futures=True)
        self._waiting.clear()
