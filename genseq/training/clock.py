"""The run's clock: elapsed time across resumed sessions, progress, and --time-budget.

``--time-budget`` bounds the whole command, set-up included, so the loop stops early enough to
leave time for what follows its last step: the final evaluations on the whole validation split
and the last save.
"""

from __future__ import annotations

import time

END_RESERVE_S = 2.0  # kept under --time-budget for the last save, the loss plot and exit
FORWARD_SPEEDUP = 3  # evaluating a token costs about a third of training on it
WARMUP_STEPS = 5  # steps before this session's training rate is worth extrapolating


class Clock:
    def __init__(
        self,
        budget: float | None,
        total_steps: int | None,
        process_start: float,
        earlier_seconds: float = 0.0,
    ) -> None:
        self.budget = budget
        self.total_steps = total_steps
        self.process_start = process_start
        self.earlier_seconds = earlier_seconds  # what earlier sessions of a resumed run took
        self.eval_rate: float | None = None  # validation tokens per second, once measured
        self._session = (time.perf_counter(), 0, 0)  # when, at which step and token count

    def start_session(self, step: int, tokens_seen: int) -> None:
        self._session = (time.perf_counter(), step, tokens_seen)

    def elapsed(self) -> float:
        return self.earlier_seconds + time.perf_counter() - self.process_start

    def progress(self, step: int) -> float:
        """How far through the run, 0 to 1: by steps, or by the budget, whichever is further."""
        done = step / self.total_steps if self.total_steps else 0.0
        if self.budget:
            done = max(done, self.elapsed() / self.budget)
        return min(done, 1.0)

    def end_reserve(self, step: int, tokens_seen: int, end_tokens: int) -> float:
        """Seconds to keep for evaluating ``end_tokens`` validation tokens and the last save."""
        rate = self.eval_rate
        if rate is None:
            since, step0, tokens0 = self._session
            if step - step0 < WARMUP_STEPS:
                return END_RESERVE_S
            seconds = max(time.perf_counter() - since, 1e-9)
            rate = FORWARD_SPEEDUP * (tokens_seen - tokens0) / seconds
        return end_tokens / rate + END_RESERVE_S

    def out_of_time(self, step: int, tokens_seen: int, end_tokens: int) -> bool:
        """Whether the loop must stop now to end within the budget."""
        reserve = self.end_reserve(step, tokens_seen, end_tokens)
        return bool(self.budget) and self.elapsed() + reserve >= self.budget

    def nearly_out(self, step: int, tokens_seen: int, end_tokens: int) -> bool:
        """Whether the end is so near that a periodic evaluation would only delay it."""
        reserve = self.end_reserve(step, tokens_seen, end_tokens)
        return bool(self.budget) and self.elapsed() + 2 * reserve >= self.budget
