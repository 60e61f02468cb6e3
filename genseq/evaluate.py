"""Held-out loss: nats per token over every prediction of a token array, exactly once.

Used by the trainer for validation and by `genseq eval` for files. Bits per character divide
the same total by the number of characters, which compares models across tokenizations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from genseq.data import eval_windows
from genseq.model import RecurrentLM


@dataclass
class EvalResult:
    nats: float  # summed negative log-likelihood
    tokens: int  # predictions counted

    @property
    def loss(self) -> float:
        return self.nats / max(self.tokens, 1)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 700.0))

    def bits_per_character(self, characters: int) -> float:
        return self.nats / max(characters, 1) / math.log(2)


@torch.no_grad()
def evaluate_tokens(
    model: RecurrentLM,
    tokens: np.ndarray,
    device: torch.device | str = "cpu",
    streams: int = 32,
    seq_len: int = 256,
) -> EvalResult:
    """Loss of ``model`` on ``tokens``; the recurrent state is carried along each stream."""
    was_training = model.training
    model.eval()
    nats = 0.0
    count = 0
    state = None
    for x, y in eval_windows(np.asarray(tokens), streams, seq_len):
        xt = torch.from_numpy(x).to(device)
        yt = torch.from_numpy(y).to(device)
        if state is None:
            state = model.init_state(xt.size(0), device)
        loss, state = model(xt, state, yt)  # mean nats over the window's targets
        targets = int((yt >= 0).sum().item())
        nats += float(loss) * targets
        count += targets
    model.train(was_training)
    return EvalResult(nats, count)
