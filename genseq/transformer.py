"""TransformerLM: a decoder-only Transformer that speaks ``RecurrentLM``'s state protocol.

Pre-norm blocks (LayerNorm -> causal self-attention -> residual, LayerNorm -> GELU MLP 4x ->
residual), attention through ``F.scaled_dot_product_attention`` (flash or memory-efficient
kernels on a GPU), embeddings tied to the output layer. Its "state" is a ``KVCache``: per
layer the keys and values of at most ``context - 1`` past tokens and the position reached, so
the trainer, ``genseq.sample.BatchSampler`` and ``genseq.evaluate`` drive it exactly as they
drive an LSTM (``init_state``, ``forward(x, state)``, ``advance``, ``step``).

Positions are rotary (RoPE, GPT-NeoX's rotate-half form) rather than learned: a query and a
key meet at a score that depends only on their distance, so a cache can slide (drop its oldest
entries) without re-encoding anything, and a sample can run past ``context`` for ever with no
position ever unseen in training. Every layer attends to at most the last ``context`` tokens
(itself included): training windows no longer than ``context`` are plain causal attention,
and ``forward`` over a longer sequence (or a cached one) uses the same sliding band, so a
step-by-step run with the cache gives the logits of one ``forward`` over the whole sequence
(tests/test_transformer.py). Past ``context`` the receptive field still grows with depth
(a layer's cached keys saw their own ``context`` tokens), as in Mistral's sliding-window
attention. One sampled token costs one step: ``O(layers x context x width)`` attention
work plus the weights, flat however long the sample, and the cache holds
``2 x layers x (context - 1) x width`` floats per sample. On a CPU the sampler takes its steps
through ``genseq.transformer_decode`` instead: the same logits from a ring-buffer cache
written in place and fewer operator calls.

Training windows are independent (the GPT recipe: ``carries_state`` is False, so the trainer
passes no state between batches); evaluation and sampling carry the cache along the stream.

Pretrained word vectors (``--embeddings``) of another width than the model's keep their own
width in the embedding table ``E`` ``(V, vector_size)`` (so the loaded rows are the file's
vectors, and ``--freeze-embeddings`` holds exactly them), and a learned map ``P``
(``embed_proj``, ``(width, vector_size)``, no bias) takes a row into the model: word ``w``
enters as ``P e_w``. The output layer stays tied to that same vector: the logit of ``w`` is
``h . P e_w``, computed as ``(h P) E^T`` (the features through ``P``'s transpose, then the
table). Tying through the projection, rather than untying or adding a second map back,
keeps the one vector per word that tying is for (a word's input and output embeddings are
equal, as without vectors), adds no weights beyond ``P``, and lets the output rows of frozen
words still adapt through ``P``. Its cost: the output layer multiplies by ``vector_size``
columns instead of ``width`` (300-d GloVe in a 128-wide model: 2.3 times the output layer's
work), plus ``width x vector_size`` per token for ``P``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from genseq.model import CheapDropout, ModelConfig

ROPE_BASE = 10000.0


@dataclass
class KVCache:
    """Per layer, keys and values ``(B, heads, C, head_dim)`` of the last ``C <= context - 1``
    tokens (keys already rotated to their absolute positions), and the next position."""

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    position: int = 0

    def expanded(self, batch_size: int) -> KVCache:
        """The batch-1 cache repeated for ``batch_size`` samples (one prompt, many samples)."""
        rows = [
            (k.expand(batch_size, -1, -1, -1).contiguous(), v.expand(batch_size, -1, -1, -1))
            for k, v in self.layers
        ]
        return KVCache([(k, v.contiguous()) for k, v in rows], self.position)

    def detached(self, dtype: torch.dtype | None = None) -> KVCache:
        rows = [
            (k.detach().to(dtype or k.dtype), v.detach().to(dtype or v.dtype))
            for k, v in self.layers
        ]
        return KVCache(rows, self.position)


def rotary(
    positions: torch.Tensor, head_dim: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin ``(T, head_dim)`` for absolute ``positions`` ``(T,)``. The angles are
    worked out in float64: at position 100,000 a float32 angle is off by about 0.01 radian,
    which a long sample would feel."""
    half = head_dim // 2
    inv_freq = ROPE_BASE ** (-torch.arange(half, dtype=torch.float64) / half)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]  # (T, half)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float().to(device), angles.sin().float().to(device)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on ``x`` ``(..., T, head_dim)`` (rotate-half form: ``x * cos`` plus
    ``(-x[half:], x[:half]) * sin``). The half-turn is one roll with the minus sign moved
    onto the small ``sin`` table: the same products, so the same bits, in fewer operations
    over the large tensor."""
    half = x.size(-1) // 2
    signed = torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)
    return (x * cos + x.roll(half, dims=-1) * signed).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int, context: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.context, self.dropout = heads, context, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x`` ``(B, T, D)`` (``cos``/``sin``: its positions' rotations); ``past`` the
        cached keys and values of the positions just before. The output, and the keys and values
        of the last ``context - 1`` positions for the next call."""
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rotate(qkv[:2], cos, sin)  # (B, heads, T, hd) each, rotated in one pass
        v = qkv[2]
        if past is not None and past[0].size(2):
            k = torch.cat([past[0].to(k.dtype), k], dim=2)
            v = torch.cat([past[1].to(v.dtype), v], dim=2)
        p = self.dropout if self.training else 0.0
        cached = k.size(2) - t
        if cached == 0 and t <= self.context:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=t > 1)
        elif t == 1:  # one step: the cache holds context - 1 keys, all in reach
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        else:
            mask = band_mask(t, cached, self.context, x.device)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        first = max(0, k.size(2) - (self.context - 1))  # the next query reaches these
        kept = (k[:, :, first:], v[:, :, first:])
        return self.proj(out.transpose(1, 2).reshape(b, t, d)), kept


def band_mask(queries: int, cached: int, context: int, device: torch.device) -> torch.Tensor:
    """``(queries, cached + queries)``: query i (at key index ``cached + i``) sees the keys
    at most ``context - 1`` before it, and none after."""
    q = torch.arange(queries, device=device)[:, None] + cached
    k = torch.arange(cached + queries, device=device)[None, :]
    return (k <= q) & (q - k < context)


class Block(nn.Module):
    def __init__(self, width: int, heads: int, context: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads, context, dropout)
        self.norm2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width)
        self.out = nn.Linear(4 * width, width)
        self.drop = CheapDropout(dropout)

    def forward(self, x, cos, sin, past):
        a, kept = self.attn(self.norm1(x), cos, sin, past)
        x = x + self.drop(a)
        x = x + self.drop(self.out(F.gelu(self.fc(self.norm2(x)))))
        return x, kept


class TransformerLM(nn.Module):
    """Decoder-only Transformer with ``RecurrentLM``'s interface (see the module docstring)."""

    carries_state = False  # training windows are independent; the trainer passes no state

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = self.config = config
        self.embed = nn.Embedding(c.vocab_size, c.table_size)
        self.embed_proj: nn.Module = nn.Identity()  # pretrained vectors' width -> the model's
        if c.table_size != c.hidden_size:
            self.embed_proj = nn.Linear(c.table_size, c.hidden_size, bias=False)
        self.drop = CheapDropout(c.dropout)
        self.blocks = nn.ModuleList(
            Block(c.hidden_size, c.heads, c.context, c.dropout) for _ in range(c.num_layers)
        )
        self.norm = nn.LayerNorm(c.hidden_size)
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2's: normal(0, 0.02), residual projections scaled by 1/sqrt(2 x layers)."""
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(param)
            elif "norm" in name:
                nn.init.ones_(param)
            else:
                std = 0.02
                if name.endswith(("attn.proj.weight", "out.weight")):
                    std /= math.sqrt(2 * self.config.num_layers)
                nn.init.normal_(param, 0.0, std)

    @property
    def adaptive(self) -> bool:
        return False

    def flatten_parameters(self) -> None:
        """Nothing to do (``RecurrentLM`` packs its cuDNN weights here)."""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> str:
        return self.config.describe(self.num_parameters())

    @property
    def head_dim(self) -> int:
        return self.config.hidden_size // self.config.heads

    def init_state(self, batch_size: int, device: torch.device | str = "cpu") -> KVCache:
        """An empty cache at position 0."""
        c = self.config
        empty = torch.zeros(batch_size, c.heads, 0, self.head_dim, device=device)
        return KVCache([(empty, empty) for _ in range(c.num_layers)], 0)

    def _features(self, idx: torch.Tensor, state: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        """The final-norm features ``(B, T, D)`` of ``idx`` after the cached tokens."""
        start = state.position if state is not None else 0
        t = idx.size(1)
        cos, sin = rotary(torch.arange(start, start + t), self.head_dim, idx.device)
        x = self.drop(self.embed_proj(self.embed(idx)))
        kept = []
        for i, block in enumerate(self.blocks):
            x, layer = block(x, cos, sin, state.layers[i] if state is not None else None)
            kept.append(layer)
        return self.norm(x), KVCache(kept, start + t)

    def forward(
        self, idx: torch.Tensor, state: KVCache | None = None, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, KVCache | None]:
        """Logits ``(B, T, V)`` (or with ``targets`` the mean loss) and the cache after
        ``idx``. A training call (targets, no state) returns no cache: windows are
        independent, and the trainer carries nothing."""
        features, cache = self._features(idx, state)
        if targets is not None:
            return self.loss(
                self.logits_of(features), targets
            ), cache if state is not None else None
        return self.logits_of(features), cache

    def advance(self, idx: torch.Tensor, state: KVCache | None = None) -> KVCache:
        return self._features(idx, state)[1]

    def logits_of(self, features: torch.Tensor) -> torch.Tensor:
        """The tied output layer: each word's logit is the features' dot product with the
        vector it enters as (through ``embed_proj`` where the table is the vectors' width)."""
        if isinstance(self.embed_proj, nn.Linear):
            features = features @ self.embed_proj.weight  # (..., D) -> (..., vector_size)
        return F.linear(features, self.embed.weight)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, state: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        """Logits ``(B, V)`` of the next token after ``tokens`` ``(B,)``: one position
        through every layer against the cache, never a re-run of the context."""
        features, cache = self._features(tokens.view(-1, 1), state)
        return self.logits_of(features[:, 0]), cache

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1
        )
