"""Where a run stands, saved into ``last/train_state.pt`` and restored from it on --resume.

``TrainState`` is the one definition of the run's counters: the checkpoint saves it, a resumed
run restores it and the summary reports it, so a new counter is added in one place. The rest of
``train_state.pt`` (optimizer, schedule, weight average) belongs to the objects that own it; the
RNG streams and the recurrent state are gathered here, since every process holds its own share.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields

import torch

from genseq import distributed
from genseq.distributed import DistContext
from genseq.model import State
from genseq.output_attention import AttentionState


@dataclass
class TrainState:
    step: int = 0  # optimizer updates done
    epoch: int = 0
    index: int = 0  # next batch within the epoch
    tokens_seen: int = 0  # all processes together
    bad_evals: int = 0  # evaluations in a row without improvement (--patience)
    best_val: float = math.inf  # the best periodic validation loss, on the evaluation prefix
    best_step: int = 0
    marks_done: int = 0  # periodic evaluations planned by progress that are done
    eval_size: int | None = None  # validation tokens per periodic evaluation, fixed at the first
    skipped: int = 0  # updates skipped for a non-finite loss (--on-nan skip)
    train_seconds: float = 0.0  # the run's elapsed seconds when this state was saved

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> TrainState:
        """The counters of a ``train_state.pt``; counters it lacks keep their start values."""
        state = cls()
        for field in fields(cls):
            value = saved.get(field.name)
            if value is not None:
                kind = float if field.name in ("best_val", "train_seconds") else int
                setattr(state, field.name, kind(value))
        return state

    def train_record(self, loss: float, lr: float, tok_s: float, elapsed: float, progress: float):
        """The log's record of a training interval."""
        return {
            "kind": "train",
            **self._where(),
            "loss": loss,
            "lr": lr,
            "tok_s": round(tok_s, 1),
            "elapsed": round(elapsed, 2),
            "progress": round(progress, 4),
        }

    def eval_record(self, loss: float, best: bool, final: bool, elapsed: float) -> dict:
        """The log's record of an evaluation (``final``: on the whole split, at the end)."""
        return {
            "kind": "eval",
            **self._where(),
            "val_loss": loss,
            "val_ppl": math.exp(min(loss, 700)),
            "best": best,
            "final": final,
            "elapsed": round(elapsed, 2),
        }

    def _where(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "tokens": self.tokens_seen}

    def summary(self) -> dict:
        """The counters a run's summary reports."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "tokens_seen": self.tokens_seen,
            "best_step": self.best_step,
            "skipped_steps": self.skipped,
        }


def streams_to_save(ctx: DistContext, hidden: State | None, device: torch.device) -> dict:
    """The recurrent state and RNG streams of every process, as ``train_state.pt`` keeps them.
    A model with ``--attention`` also keeps its past outputs (``hidden_memory``)."""
    if not isinstance(hidden, AttentionState):
        return {"hidden": hidden_to_save(ctx, hidden), **rng_to_save(ctx, device)}
    return {
        "hidden": hidden_to_save(ctx, hidden.recurrent),
        "hidden_memory": hidden_to_save(ctx, hidden.memory),
        **rng_to_save(ctx, device),
    }


def restore_streams(
    ctx: DistContext, saved: dict, device: torch.device, seed: int, step: int
) -> State | None:
    """Continue this process's RNG streams; its share of the saved recurrent state."""
    restore_rng(ctx, saved, device, seed, step)
    hidden = hidden_from_saved(ctx, saved["hidden"], device)
    memory = hidden_from_saved(ctx, saved.get("hidden_memory") or [], device)
    if hidden is not None and memory is not None:
        return AttentionState(hidden, memory)  # type: ignore[arg-type]
    return hidden


def hidden_to_save(ctx: DistContext, hidden: State | None) -> list[torch.Tensor]:
    """The global batch's recurrent state (every process holds streams ``rank::world``); none
    for a model that carries no state between windows (a Transformer)."""
    if hidden is None:
        return []
    local = list(hidden) if isinstance(hidden, tuple) else [hidden]
    return [distributed.gather_streams(ctx, h.cpu()).cpu() for h in local]


def hidden_from_saved(
    ctx: DistContext, saved: list[torch.Tensor], device: torch.device
) -> State | None:
    """This process's streams of a saved global recurrent state (None: none was saved)."""
    if not saved:
        return None
    mine = [h[:, ctx.rank :: ctx.world_size].to(device) for h in saved]
    return tuple(mine) if len(mine) == 2 else mine[0]  # type: ignore[return-value]


def rng_to_save(ctx: DistContext, device: torch.device) -> dict:
    """Every process's torch RNG (dropout masks) and rank 0's Python RNG."""
    ranks = distributed.gather_objects(ctx, torch.get_rng_state())
    cuda = None
    if device.type == "cuda":
        cuda = distributed.gather_objects(ctx, torch.cuda.get_rng_state(device))
    return {
        "rng_torch": ranks[0],
        "rng_torch_ranks": ranks,
        "rng_cuda_ranks": cuda,
        "rng_python": random.getstate(),
    }


def restore_rng(ctx: DistContext, saved: dict, device: torch.device, seed: int, step: int) -> None:
    """Continue each process's RNG streams; with another number of processes than the run
    was saved with, each process starts a fresh stream instead (the run is then not bit-exact,
    which no other process count could be)."""
    ranks = saved.get("rng_torch_ranks") or [saved["rng_torch"]]
    if len(ranks) == ctx.world_size:
        torch.set_rng_state(ranks[ctx.rank])
        if device.type == "cuda" and saved.get("rng_cuda_ranks"):
            torch.cuda.set_rng_state(saved["rng_cuda_ranks"][ctx.rank], device)
    else:
        torch.manual_seed(seed + ctx.rank + 7919 * step)
    random.setstate(_to_tuple(saved["rng_python"]))


def _to_tuple(value):
    """``random.setstate`` needs tuples; torch.save may round-trip them as lists."""
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value
