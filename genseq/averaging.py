"""An exponential moving average of the weights, evaluated and saved in their place.

Why: a short run ends while the weights still move with each batch; their average over the
last few hundred steps sits nearer the bottom of the valley. On Tiny Shakespeare (1x512, 2,400
steps) the average scored 1.4542 where the last weights scored 1.4635 (BENCHMARKS.md), for
one ``lerp`` of the weights per step; a word model with heavy dropout gained more from a
long average (``plan.EMA_HORIZON``). Averaging starts halfway through the run, from a copy of
the weights there, so the first, poor weights never enter it. torch's ``AveragedModel``
keeps the average; this module decides when it starts and how a checkpoint carries it:
``model.safetensors`` (``best/`` and ``last/``) holds the averaged weights, the ones to
sample with; ``last/train_state.pt`` holds the training weights under ``ema``, so a resumed
run continues exactly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

EMA_START = 0.5  # share of the run (progress) after which the weights are averaged


def start_average(model: nn.Module, decay: float) -> AveragedModel:
    """A copy of ``model`` that ``update_parameters(model)`` moves towards it each step."""
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
    for p in averaged.parameters():
        p.requires_grad_(False)
        p.grad = None
    rnn = getattr(averaged.module, "rnn", None)
    if rnn is not None:
        rnn.flatten_parameters()
    return averaged


def averaged_state(model: nn.Module, averaged: AveragedModel) -> dict:
    """What ``train_state.pt`` keeps to resume an average: the training weights (the average
    is ``model.safetensors``) and the number of steps averaged."""
    return {
        "raw": [p.detach().cpu() for p in model.parameters()],
        "count": int(averaged.n_averaged),
    }


def resume_average(model: nn.Module, saved: dict, decay: float, keep: bool) -> AveragedModel | None:
    """``model`` holds a checkpoint's averaged weights: start the average from them (``keep``:
    this process evaluates), then put the training weights back into ``model``."""
    averaged = start_average(model, decay) if keep else None
    if averaged is not None:
        averaged.n_averaged.fill_(int(saved["count"]))
    with torch.no_grad():
        for p, raw in zip(model.parameters(), saved["raw"], strict=True):
            p.copy_(raw.to(p.device))
    return averaged


class WeightAverage:
    """A run's average: kept by the process that evaluates and saves (``keep``), started
    ``EMA_START`` through the run and moved after every update."""

    def __init__(self, decay: float | None, keep: bool) -> None:
        self.decay = decay or 0.0
        self.keep = keep
        self.averaged: AveragedModel | None = None

    def update(self, model: nn.Module, progress: float) -> None:
        if not (self.decay and self.keep):
            return
        if self.averaged is None:
            if progress < EMA_START:
                return
            self.averaged = start_average(model, self.decay)
        self.averaged.update_parameters(model)

    def scored(self, model: nn.Module) -> nn.Module:
        """The model to evaluate, sample and save: the average once it runs."""
        return model if self.averaged is None else self.averaged.module

    def to_save(self, model: nn.Module) -> dict | None:
        return None if self.averaged is None else averaged_state(model, self.averaged)

    def resume(self, model: nn.Module, saved: dict | None) -> None:
        """``model`` holds a checkpoint's weights: the average, when ``saved`` says one ran."""
        if saved:
            self.averaged = resume_average(model, saved, self.decay, keep=self.keep)
