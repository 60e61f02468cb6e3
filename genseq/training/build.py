"""What a planned training config builds: the model, its optimizer, and the plan's summary."""

from __future__ import annotations

import torch
from torch import nn

from genseq.data import StreamBatches, TokenData
from genseq.errors import UsageError
from genseq.model import ModelConfig, RecurrentLM
from genseq.plan import TrainConfig


def model_config(cfg: TrainConfig, vocab_size: int) -> ModelConfig:
    """The model a (planned) training config describes; a usage error where the settings
    ask for more than genseq builds (``model.SIZE_BOUNDS``, ``MAX_PARAMETERS``)."""
    try:
        return _model_config(cfg, vocab_size)
    except ValueError as exc:
        raise UsageError(f"these settings describe no model genseq can build: {exc}") from None


def _model_config(cfg: TrainConfig, vocab_size: int) -> ModelConfig:
    return ModelConfig(
        vocab_size=vocab_size,
        arch=cfg.arch or "rnn",
        cell=cfg.cell or "lstm",  # unused by a Transformer
        heads=cfg.heads or 0,
        context=cfg.context or 0,
        attention=cfg.attention or 0,
        num_layers=cfg.num_layers,
        hidden_size=cfg.hidden_size,
        embed_size=cfg.embed_size,
        dropout=cfg.dropout,
        weight_drop=cfg.weight_drop,
        tie_weights=cfg.tie_weights,
        adaptive_cutoffs=list(cfg.adaptive_cutoffs or []),
        vector_size=_vector_size(cfg),
    )


def _vector_size(cfg: TrainConfig) -> int:
    """The embedding table's width where pretrained vectors of another width than the
    embedding were loaded (a learned projection maps them to it); 0 otherwise."""
    loaded = cfg.embeddings_loaded
    if not loaded or loaded["dimension"] == cfg.embed_size:
        return 0
    return int(loaded["dimension"])


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on matrices only; biases and gains are not decayed.

    Adam runs fused (one kernel for every parameter) on CPU and CUDA: 1.3 -> 0.55 ms a step
    for a 1x384 character LSTM, 4% of the step (BENCHMARKS.md).
    """
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, fused=_fused(model))
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=_fused(model))


def _fused(model: nn.Module) -> bool | None:
    return next(model.parameters()).device.type in ("cpu", "cuda") or None


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict, model: nn.Module) -> None:
    """A saved param group carries its run's ``fused`` setting: fuse where this device can."""
    optimizer.load_state_dict(saved)
    if not isinstance(optimizer, torch.optim.SGD):
        for group in optimizer.param_groups:
            group["fused"] = _fused(model)


def planned_steps(cfg: TrainConfig, batches: StreamBatches) -> int | None:
    """The steps --epochs and --max-steps allow (None: only a budget or a signal stops)."""
    steps = None
    if cfg.epochs:
        steps = sum(batches.batches_in_epoch(e) for e in range(cfg.epochs))
    if cfg.max_steps:
        steps = min(steps, cfg.max_steps) if steps else cfg.max_steps
    return steps


def describe_plan(
    cfg: TrainConfig,
    model: RecurrentLM,
    data: TokenData,
    batches: StreamBatches,
    device: torch.device,
    total: int | None,
) -> str:
    """The run's plan in three lines: model, data, schedule and when it stops."""
    c = cfg
    stop = []
    if c.epochs:
        stop.append(f"{c.epochs} epoch(s)")
    if c.max_steps:
        stop.append(f"{c.max_steps:,} steps")
    if c.time_budget:
        stop.append(f"{c.time_budget:g} s budget")
    return (
        f"model: {model.describe()} on {device}"
        f"{' (bf16 autocast)' if c.precision == 'bf16' else ''}\n"
        f"data: {len(data.train):,} train / {len(data.val):,} val tokens "
        f"({data.level} level, vocabulary {data.vocab_size:,}); "
        f"batch {c.batch_size} x {c.seq_len}, {batches.batches_in_epoch(0):,} steps/epoch\n"
        f"schedule: {c.optimizer} lr {c.lr:g}, weight decay {c.weight_decay:g}, {c.schedule}, "
        f"warmup {c.warmup_steps}, clip {c.clip_norm:g}"
        + (f", weight average {c.ema:g} from halfway" if c.ema else "")
        + f"; stop after {' or '.join(stop) or 'interrupt'}"
        + (f" ({total:,} steps)" if total else "")
        + _embeddings_line(c)
    )


def _embeddings_line(cfg: TrainConfig) -> str:
    if not cfg.embeddings_loaded:
        return ""
    from genseq.embeddings import coverage_line

    frozen = bool(cfg.freeze_embeddings)
    return "\n" + coverage_line(cfg.embeddings_loaded, cfg.embed_size or 0, frozen)
