"""Training progress on stderr: a live rich display on a terminal, plain lines otherwise.

The trainer only calls a ``Reporter``; it never prints. ``RichReporter`` shows step, loss,
validation loss, tokens/s and time left; when stderr is not a terminal (a log file, CI) it
prints one plain line per log interval instead of redrawing.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol


class Reporter(Protocol):
    def start(self, total_steps: int | None, time_budget: float | None) -> None: ...
    def step(self, metrics: dict) -> None: ...
    def evaluation(self, metrics: dict) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self) -> None: ...


class SilentReporter:
    def start(self, total_steps: int | None, time_budget: float | None) -> None:
        pass

    def step(self, metrics: dict) -> None:
        pass

    def evaluation(self, metrics: dict) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass


def _fmt_time(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class RichReporter:
    """Progress for people: live on a terminal, plain lines in logs."""

    def __init__(self, quiet: bool = False, live: bool | None = None) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.live = self.console.is_terminal if live is None else live
        self._progress = None
        self._task = None
        self._val = float("nan")
        self._last_plain = 0.0

    def start(self, total_steps: int | None, time_budget: float | None) -> None:
        self._total = total_steps
        self._budget = time_budget
        self._t0 = time.perf_counter()
        if self.quiet or not self.live:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=1.0, status="starting", eta="--:--")

    def _status(self, m: dict) -> str:
        steps = f"step {m['step']:,}" + (f"/{self._total:,}" if self._total else "")
        val = f"val {self._val:.4f}" if self._val == self._val else "val -"
        return (
            f"{steps}  epoch {m['epoch']}  loss {m['loss']:.4f}  {val}  "
            f"{m['tok_s']:,.0f} tok/s  lr {m['lr']:.2e}"
        )

    def step(self, metrics: dict) -> None:
        if self.quiet:
            return
        progress = metrics.get("progress", 0.0)
        elapsed = metrics.get("elapsed", 0.0)
        eta = elapsed * (1 - progress) / progress if progress > 0 else None
        if self._progress is not None:
            self._progress.update(
                self._task, completed=progress, status=self._status(metrics), eta=_fmt_time(eta)
            )
        elif time.perf_counter() - self._last_plain >= 5.0 or progress >= 1.0:
            self._last_plain = time.perf_counter()
            print(
                f"{self._status(metrics)}  {progress:6.1%}  elapsed {_fmt_time(elapsed)}  "
                f"eta {_fmt_time(eta)}",
                file=sys.stderr,
                flush=True,
            )

    def evaluation(self, metrics: dict) -> None:
        self._val = metrics["val_loss"]
        if self.quiet:
            return
        best = "  (best)" if metrics.get("best") else ""
        split = " on the whole split" if metrics.get("final") else ""
        self.message(
            f"eval step {metrics['step']:,}{split}: val loss {metrics['val_loss']:.4f} "
            f"nats/token, perplexity {metrics['val_ppl']:.2f}{best}"
        )

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
