"""When a run evaluates, on how much of the validation split, and which checkpoint is best.

Periodic evaluations read a prefix of the validation split sized from the run itself, so that
ten of them cost about 5% of the run (BENCHMARKS.md: "Evaluation share"). A prefix can rank two
models differently from the whole split, so the end of the run settles ``best/`` on the whole
split: the final model and the best periodic candidate are both scored on all of it, and the
better one is ``best/``, the checkpoint every command reads from a run directory.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genseq import distributed
from genseq.distributed import DistContext
from genseq.evaluate import evaluate_tokens
from genseq.model import RecurrentLM, build_model
from genseq.training.clock import Clock
from genseq.training.state import TrainState

EVAL_MARKS = 10  # evaluations per run when --eval-every is not given
EVAL_SHARE = 0.15  # of the tokens trained before the first evaluation (a forward pass costs
# about a third of a training step per token, so ten evaluations cost about 5% of the run)
EVAL_MIN_TOKENS, EVAL_MAX_TOKENS = 4_096, 262_144
EVAL_STREAMS = 32
EVAL_SEQ_LEN = 256
IMPROVEMENT = 1e-6  # nats: smaller gains are rounding, not improvement


def prefix_size(tokens_seen: int) -> int:
    """Validation tokens per periodic evaluation, for a run that has trained ``tokens_seen``."""
    return min(EVAL_MAX_TOKENS, max(EVAL_MIN_TOKENS, int(EVAL_SHARE * tokens_seen)))


def periodic_due(step: int, progress: float, marks_done: int, every: int | None) -> bool:
    """Every ``every`` steps, or at each tenth of the run's progress but the last (the end of
    the run evaluates anyway)."""
    if every:
        return step % every == 0
    return progress >= (marks_done + 1) / EVAL_MARKS and marks_done + 1 < EVAL_MARKS


def improved(loss: float, best: float) -> bool:
    return loss < best - IMPROVEMENT


@dataclass(frozen=True)
class FinalChoice:
    """The end of a run: which model ``best/`` holds, and both whole-split losses."""

    final_loss: float  # the final model on the whole split
    candidate_loss: float  # the best periodic checkpoint on the whole split (inf: none)

    @property
    def final_is_best(self) -> bool:
        return self.final_loss <= self.candidate_loss  # a tie goes to the later model

    @property
    def best_loss(self) -> float:
        return self.final_loss if self.final_is_best else self.candidate_loss


def best_summary(state: TrainState, whole_split_loss: float, whole: int) -> dict:
    """The best checkpoint's loss for summaries, and what it was measured on: the whole split
    once the end of the run measured it (``whole_split_loss`` finite), else the prefix."""
    prefix_is_whole = state.eval_size is None or state.eval_size >= whole
    if math.isfinite(whole_split_loss) or prefix_is_whole:
        loss = whole_split_loss if math.isfinite(whole_split_loss) else state.best_val
        measured_on = "the whole validation split"
    else:
        loss, measured_on = state.best_val, f"the first {state.eval_size:,} validation tokens"
    return {
        "best_val_loss": loss if math.isfinite(loss) else None,
        "best_measured_on": measured_on,
    }


def end_tokens(whole: int, eval_size: int | None, has_best: bool) -> int:
    """Validation tokens the end of a run evaluates: the whole split for the final model, and
    again for the best periodic checkpoint when a prefix chose it."""
    prefix_only = eval_size is not None and eval_size < whole
    return whole * (2 if prefix_only and has_best else 1)


class Validator:
    """Scores models on validation tokens: rank 0 evaluates, every rank gets its loss.

    In the training precision: a bf16 evaluation takes half the time and moved a 1x384
    character model's loss by 7e-6 nats (BENCHMARKS.md). Each evaluation's speed goes to the
    clock, which keeps time for the end of the run by it.
    """

    def __init__(self, ctx: DistContext, device: torch.device, bf16: bool, clock: Clock) -> None:
        self.ctx, self.device, self.bf16, self.clock = ctx, device, bf16, clock

    def loss(self, model: RecurrentLM, tokens: np.ndarray) -> float:
        loss = 0.0
        if self.ctx.is_main:
            t0 = time.perf_counter()
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                result = evaluate_tokens(model, tokens, self.device, EVAL_STREAMS, EVAL_SEQ_LEN)
            self.clock.eval_rate = max(result.tokens, 1) / max(time.perf_counter() - t0, 1e-9)
            loss = result.loss
        return distributed.from_main(self.ctx, loss, self.device)

    def checkpoint_loss(self, ckpt_dir: Path, like: RecurrentLM, tokens: np.ndarray) -> float:
        """The loss of a saved checkpoint's weights, loaded into a model shaped ``like``."""
        model = like
        if self.ctx.is_main:
            from safetensors.torch import load_model

            model = build_model(like.config).to(self.device)
            load_model(model, str(ckpt_dir / "model.safetensors"), device=str(self.device))
            model.flatten_parameters()
        return self.loss(model, tokens)
