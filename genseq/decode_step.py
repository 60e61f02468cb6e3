"""A faster one-token step of an LSTM for sampling on a CPU.

Sampling a 2x512 character LSTM at batch 1 is bound by memory traffic, not arithmetic: each
token reads every recurrent weight once (12.5 MB), more than the caches keep between steps.
``LstmDecodeStep`` therefore (1) multiplies ``[x, h]`` by the input and recurrent weights
joined into one matrix, one matrix-vector product per layer instead of two, and (2) where
PyTorch has fbgemm (x86 with AVX2), keeps that matrix in half precision, packed, and
multiplies it with ``quantized.linear_dynamic_fp16``: half the bytes per token, fp32
arithmetic. Rounding the weights to fp16 moves the logits by about 1e-3 to 1e-2 (a relative
change of the probabilities of that order; the tests bound it), and the step of a 2x512 LSTM
runs about 4x faster than ``RecurrentLM.step`` (BENCHMARKS.md). Without fbgemm the joined
matrix stays fp32. Other cells, models with ``--attention``, large batches and GPUs keep
``RecurrentLM.step``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from genseq.model import RecurrentLM, State

MIN_HIDDEN = 256  # smaller models stay in cache: the plain step is as fast
MAX_BATCH = 16  # larger batches are bound by arithmetic, where fp16 weights do not help


def _fp16_linear_available() -> bool:
    try:
        w = torch.zeros(8, 8)
        packed = torch.ops.quantized.linear_prepack_fp16(w, torch.zeros(8))
        torch.ops.quantized.linear_dynamic_fp16(torch.zeros(1, 8), packed)
        return True
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


class LstmDecodeStep:
    """``step(tokens, state) -> (logits, state)`` with ``RecurrentLM.step``'s contract."""

    def __init__(self, model: RecurrentLM, half: bool | None = None) -> None:
        c = model.config
        self.model = model
        self.layers = c.num_layers
        self.half = _fp16_linear_available() if half is None else half
        weights = model.rnn._flat_weights
        self.joined = []
        with torch.no_grad():
            for layer in range(c.num_layers):
                w_ih, w_hh, b_ih, b_hh = weights[4 * layer : 4 * layer + 4]
                w = torch.cat([w_ih, w_hh], dim=1).contiguous()  # (4H, in + H)
                b = (b_ih + b_hh).contiguous()
                if self.half:
                    self.joined.append(torch.ops.quantized.linear_prepack_fp16(w, b))
                else:
                    self.joined.append((w, b))

    @staticmethod
    def suits(model: RecurrentLM, batch_size: int, device: torch.device) -> bool:
        c = model.config
        return (
            device.type == "cpu"
            and c.arch == "rnn"
            and c.cell == "lstm"
            and not c.attention  # RecurrentLM.step attends; this step has no attention
            and c.hidden_size >= MIN_HIDDEN
            and batch_size <= MAX_BATCH
        )

    def _gates(self, layer: int, xh: torch.Tensor) -> torch.Tensor:
        if self.half:
            return torch.ops.quantized.linear_dynamic_fp16(xh, self.joined[layer])
        w, b = self.joined[layer]
        return F.linear(xh, w, b)

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        model = self.model
        x = F.embedding(tokens, model.embed.weight)  # (B, E), or the vectors' width
        if model.config.table_size != model.config.embed_size:
            x = F.linear(x, model.embed_proj.weight)  # (B, E)
        if state is None:
            state = model.init_state(tokens.size(0), tokens.device)
        h_all, c_all = state
        hs, cs = [], []
        for layer in range(self.layers):
            gates = self._gates(layer, torch.cat([x, h_all[layer]], dim=1))  # (B, 4H)
            i, f, g, o = gates.chunk(4, dim=1)
            cell = torch.sigmoid(f).mul_(c_all[layer]).add_(torch.sigmoid(i).mul_(torch.tanh(g)))
            x = torch.sigmoid(o).mul_(torch.tanh(cell))
            hs.append(x)
            cs.append(cell)
        if not isinstance(model.bridge, torch.nn.Identity):
            x = model.bridge(x)
        logits = model.logits_of(x)  # (B, V)
        return logits, (torch.stack(hs), torch.stack(cs))
