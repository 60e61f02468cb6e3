"""``--attention N``: a recurrent model's attention over its own last N outputs.

Luong et al. (2015)'s global attention with the "general" score, turned on the recurrent stack's
own past, as Magenta's attention_rnn (TensorFlow's ``AttentionCellWrapper``) turns it. At each
position t the top layer's output ``h_t`` is the query; the keys and values are that layer's
outputs ``h_{t-N} .. h_{t-1}``, the N positions before t (``h_t`` itself is not among them: it
reaches the output through the combination below already, and a key equal to the query would
let the score learn to look at itself)::

    score(h_t, h_s) = h_t^T W_a h_s / sqrt(H)       (Luong's "general" score, scaled as SDPA)
    c_t = sum_s softmax(score)_s h_s
    h~_t = tanh(W_c [c_t; h_t])                      (goes on to the output layer)

The scale is ``F.scaled_dot_product_attention``'s; ``W_a`` could learn any other, and with it
the first scores of a fresh model stay near 0. Before a stream begins its past outputs are zeros
(as the recurrent state is zeros, and as Magenta's wrapper starts its attention states): every
position sees exactly N keys, no softmax is ever empty, and the state has one fixed shape.

Unlike Magenta's wrapper, ``h~_t`` is not fed back into the cell's next input ("input feeding").
That feedback makes each step's input depend on the step before's attention, so the recurrent
stack could no longer run a whole window as one fused cuDNN/oneDNN call: training would become
a Python loop over time steps, several times slower on every device. Here the stack runs as
before, and the attention for a whole window is one masked ``scaled_dot_product_attention``
over the window's outputs and the N carried before it.

Cost (multiply-adds counted, not timed): ``W_a`` and ``W_c`` add ``3 H^2`` per token, about
two thirds of a one-layer LSTM's ``4 H (E + H)`` at E = 64, and the scores and the weighted sum
``2 N H`` more. A training window of T positions scores each query against all ``N + T`` keys
and masks all but its band of N (``(N + T) / N`` times the scores it needs; 5% of that LSTM's
arithmetic at windows of 32, N = 16), which keeps the whole window one fused kernel call.

The state is an ``AttentionState``: the recurrent state and the last N top-layer outputs. The
trainer carries and detaches it between windows exactly as it does the plain ``(h, c)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

Recurrent = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _each(state: Recurrent, fn) -> Recurrent:
    """``fn`` applied to every tensor of a recurrent state (``h``, or ``(h, c)``)."""
    if isinstance(state, tuple):
        return tuple(fn(s) for s in state)  # type: ignore[return-value]
    return fn(state)


@dataclass
class AttentionState:
    """``recurrent``: the stack's state (``(L, B, H)``, or a pair for an LSTM); ``memory``
    ``(N, B, H)``: the top layer's last N outputs, oldest first. Both keep the streams on
    dimension 1, so saving, gathering across processes and selecting streams treat them alike."""

    recurrent: Recurrent
    memory: torch.Tensor

    def detached(self, dtype: torch.dtype | None = None) -> AttentionState:
        def cut(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(dtype or t.dtype)

        return AttentionState(_each(self.recurrent, cut), cut(self.memory))

    def expanded(self, batch_size: int) -> AttentionState:
        """The batch-1 state repeated for ``batch_size`` samples (one prompt, many samples)."""

        def grow(t: torch.Tensor) -> torch.Tensor:
            return t.expand(-1, batch_size, -1).contiguous()

        return AttentionState(_each(self.recurrent, grow), grow(self.memory))


class OutputAttention(nn.Module):
    """``W_a`` (``query``) and ``W_c`` (``combine``) of the module docstring."""

    def __init__(self, hidden_size: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.query = nn.Linear(hidden_size, hidden_size, bias=False)
        self.combine = nn.Linear(2 * hidden_size, hidden_size)

    def empty_memory(self, batch_size: int, device: torch.device | str) -> torch.Tensor:
        """The past outputs before a stream begins: N zero vectors per stream."""
        return torch.zeros(self.window, batch_size, self.query.in_features, device=device)

    def remember(self, out: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """The last N outputs after ``out`` ``(B, T, H)`` followed ``memory`` ``(N, B, H)``."""
        both = torch.cat([memory.to(out.dtype), out.transpose(0, 1)])  # (N + T, B, H)
        return both[-self.window :].contiguous()

    def forward(self, out: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``h~`` ``(B, T, H)`` for the outputs ``out`` ``(B, T, H)`` of a window that follows
        ``memory`` ``(N, B, H)``, and the memory after the window."""
        t, n = out.size(1), self.window
        keys = torch.cat([memory.transpose(0, 1).to(out.dtype), out], dim=1)  # (B, N + T, H)
        q = self.query(out)  # (B, T, H)
        keys = keys.to(q.dtype)  # one dtype under autocast
        # Query i (output N + i of ``keys``) sees keys i .. N + i - 1: the N outputs before it.
        rows = torch.arange(t, device=out.device)[:, None]
        cols = torch.arange(n + t, device=out.device)[None, :]
        band = (cols >= rows) & (cols < rows + n)  # (T, N + T)
        context = F.scaled_dot_product_attention(
            q[:, None], keys[:, None], keys[:, None], attn_mask=band
        )[:, 0]  # (B, T, H)
        mixed = torch.tanh(self.combine(torch.cat([context, out.to(context.dtype)], dim=-1)))
        return mixed, keys[:, -n:].transpose(0, 1).contiguous()  # its own, small storage
