"""A run's JSON-lines log and the loss curve drawn from it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from genseq import distributed
from genseq.distributed import DistContext
from genseq.fileio import atomic_file, atomic_write_text
from genseq.jsonable import jsonable


class LogFile:
    """One JSON object per line; a no-op where ``path`` is None (processes other than rank 0)."""

    def __init__(self, path: Path | None) -> None:
        self._file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def write(self, record: dict) -> None:
        if self._file is not None:
            self._file.write(json.dumps(jsonable(record)) + "\n")  # NaN as null: strict JSON
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def read_records(path: Path) -> list[dict]:
    """The log's records; a line cut short by a crash is skipped."""
    records = []
    for line in path.read_text("utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_log(path: Path, step: int) -> None:
    """Drop records written after the checkpoint a run resumes from."""
    if path.exists():
        kept = [r for r in read_records(path) if r.get("step", 0) <= step]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def _measured(points: list[tuple]) -> list[tuple]:
    """Points with a loss (a non-finite loss is logged as null)."""
    return [(x, y) for x, y in points if y is not None]


def plot_losses(log_path: Path, png_path: Path) -> None:
    """Training and validation loss against tokens seen, as a PNG."""
    records = read_records(log_path)
    train = [(r["tokens"], r["loss"]) for r in records if r.get("kind") == "train"]
    val = [(r["tokens"], r["val_loss"]) for r in records if r.get("kind") == "eval"]
    train, val = _measured(train), _measured(val)
    if not train and not val:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train", linewidth=1)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation", linewidth=1.5)
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_file(png_path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


class LossMeter:
    """The mean training loss and token rate since the last record. Losses are summed on the
    device, so reading them (a device sync) happens once per log interval, not every step."""

    def __init__(self, device: torch.device, tokens_seen: int) -> None:
        self.total = torch.zeros((), device=device)
        self.count = 0
        self.since = (time.perf_counter(), tokens_seen)

    def add(self, loss: torch.Tensor) -> None:
        self.total += loss.detach()
        self.count += 1

    def read(self, ctx: DistContext, tokens_seen: int) -> tuple[float, float]:
        """The mean loss over every process, and tokens per second; then start again."""
        mean = distributed.mean(ctx, self.total).item() / max(self.count, 1)
        now = time.perf_counter()
        then, tokens_then = self.since
        self.total.zero_()
        self.count = 0
        self.since = (now, tokens_seen)
        return mean, (tokens_seen - tokens_then) / max(now - then, 1e-9)
