"""A faster one-token step of a ``TransformerLM`` for sampling on a CPU.

A small Transformer sampled at batch 1 is bound by the number of operator calls, not by
arithmetic: at width 128 each matrix product takes a few microseconds, about what PyTorch
spends dispatching any operator. ``TransformerDecodeStep`` therefore runs the same maths in
fewer, plainer calls:

- **A ring-buffer cache.** Each layer keeps the keys and values of the last ``context``
  positions in a fixed tensor and writes the new token's into slot ``position % context``:
  no concatenation and no copy of the cache per token. The keys are stored already rotated
  (RoPE) to their absolute positions, and attention is a weighted sum over a *set* of keys,
  so their order in the buffer does not matter; the slot a token overwrites holds the one
  position that just left its reach.
- **Rotation folded into the input projection.** RoPE is ``x * cos + rotate_half(x) * sin``
  and ``rotate_half`` is linear, so the rows of ``rotate_half(q)`` and ``rotate_half(k)`` are
  added to the joined q/k/v weight once, here: one matrix product gives q, k, v and their
  turned copies, and the rotation is one multiply and one fused multiply-add.
- **Functional calls on weights read once**, no ``nn.Module`` dispatch per layer.

The logits equal ``TransformerLM.step``'s up to float rounding (summation order differs;
tests/test_transformer.py bounds it). The state is a ``RingCache``, made from the
``KVCache`` that reading the prompt leaves and thereafter owned by this step alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from genseq.transformer import KVCache, TransformerLM, rotary

ROTARY_BLOCK = 256  # positions whose rotations are worked out at once


@dataclass
class RingCache:
    """Per layer keys and values ``(B, heads, context, head_dim)``; slot ``p % context``
    holds position ``p``'s (rotated) key and its value; ``position`` is the next position."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    position: int


def turned_rows(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """The rows that compute ``rotate_half`` of each head of ``weight``'s outputs:
    ``(-x[half:], x[:half])`` per head, as rows of a weight (or entries of a bias)."""
    shaped = weight.reshape(heads, -1, *weight.shape[1:])
    half = shaped.size(1) // 2
    return torch.cat([-shaped[:, half:], shaped[:, :half]], dim=1).reshape(weight.shape)


class _Layer:
    """One block's weights, read once, with the q/k rotation rows joined to q/k/v's."""

    def __init__(self, block, heads: int) -> None:
        attn = block.attn
        w, b = attn.qkv.weight.detach(), attn.qkv.bias.detach()
        width = w.size(1)
        qk_w, qk_b = w[: 2 * width], b[: 2 * width]
        turned_w = torch.cat([turned_rows(qk_w[:width], heads), turned_rows(qk_w[width:], heads)])
        turned_b = torch.cat([turned_rows(qk_b[:width], heads), turned_rows(qk_b[width:], heads)])
        joined = torch.cat([w, turned_w])  # q, k, v, turned q, turned k
        self.qkv = (torch.cat([b, turned_b]).contiguous(), joined.t().contiguous())
        self.norm1 = (block.norm1.weight.detach(), block.norm1.bias.detach(), block.norm1.eps)
        self.norm2 = (block.norm2.weight.detach(), block.norm2.bias.detach(), block.norm2.eps)
        self.proj = _affine(attn.proj)
        self.fc = _affine(block.fc)
        self.out = _affine(block.out)


def _affine(linear) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bias, weight.T)`` for ``torch.addmm``: one call, no transpose per token."""
    return linear.bias.detach(), linear.weight.detach().t().contiguous()


class TransformerDecodeStep:
    """``step(tokens, state) -> (logits, state)`` with ``TransformerLM.step``'s contract."""

    def __init__(self, model: TransformerLM) -> None:
        c = model.config
        self.model = model
        self.heads, self.width, self.context = c.heads, c.hidden_size, c.context
        self.head_dim = c.hidden_size // c.heads
        self.layers = [_Layer(block, c.heads) for block in model.blocks]
        norm = model.norm
        self.final_norm = (norm.weight.detach(), norm.bias.detach(), norm.eps)
        self._rotary_first = -1
        self._rotary: tuple[torch.Tensor, torch.Tensor] = (torch.empty(0), torch.empty(0))

    @staticmethod
    def suits(model, batch_size: int, device: torch.device) -> bool:
        return device.type == "cpu" and getattr(model.config, "arch", "rnn") == "transformer"

    def ring_from(self, cache: KVCache | None, batch_size: int, device) -> RingCache:
        """The ring buffers holding ``cache``'s keys and values in their slots."""
        shape = (batch_size, self.heads, self.context, self.head_dim)
        dtype = self.layers[0].qkv[1].dtype
        keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in self.layers]
        values = [torch.zeros(shape, dtype=dtype, device=device) for _ in self.layers]
        position = 0 if cache is None else cache.position
        if cache is not None and cache.layers[0][0].size(2):
            held = cache.layers[0][0].size(2)
            slots = torch.arange(position - held, position, device=device) % self.context
            for i, (k, v) in enumerate(cache.layers):
                keys[i][:, :, slots] = k.to(dtype)
                values[i][:, :, slots] = v.to(dtype)
        return RingCache(keys, values, position)

    def rotation(self, position: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin ``(1, 2 x width)`` of ``position`` for every q and k head, worked out
        for a block of ``ROTARY_BLOCK`` positions at a time."""
        first = position - position % ROTARY_BLOCK
        if self._rotary_first != first:
            positions = torch.arange(first, first + ROTARY_BLOCK)
            cos, sin = rotary(positions, self.head_dim, device)
            dtype = self.layers[0].qkv[1].dtype
            self._rotary = (
                cos.repeat(1, 2 * self.heads).to(dtype),
                sin.repeat(1, 2 * self.heads).to(dtype),
            )
            self._rotary_first = first
        row = position - first
        return self._rotary[0][row : row + 1], self._rotary[1][row : row + 1]

    @torch.no_grad()
    def __call__(
        self, tokens: torch.Tensor, state: KVCache | RingCache | None
    ) -> tuple[torch.Tensor, RingCache]:
        batch = tokens.size(0)
        if not isinstance(state, RingCache):
            state = self.ring_from(state, batch, tokens.device)
        p = state.position
        cos2, sin2 = self.rotation(p, tokens.device)
        slot, reach = p % self.context, min(p + 1, self.context)
        w = self.width
        x = self.model.embed_proj(F.embedding(tokens, self.model.embed.weight))  # (B, D)
        for i, layer in enumerate(self.layers):
            h = F.layer_norm(x, (w,), *layer.norm1)
            y = torch.addmm(layer.qkv[0], h, layer.qkv[1])  # (B, 5D)
            qk = torch.addcmul(y[:, : 2 * w] * cos2, y[:, 3 * w :], sin2)  # rotated q, k
            shape = (batch, self.heads, self.head_dim)
            state.keys[i][:, :, slot] = qk[:, w:].view(shape)
            state.values[i][:, :, slot] = y[:, 2 * w : 3 * w].view(shape)
            q = qk[:, :w].view(batch, self.heads, 1, self.head_dim)
            keys, values = state.keys[i][:, :, :reach], state.values[i][:, :, :reach]
            a = F.scaled_dot_product_attention(q, keys, values).view(batch, w)
            x = torch.addmm(x, a, layer.proj[1]).add_(layer.proj[0])
            h = F.layer_norm(x, (w,), *layer.norm2)
            inner = F.gelu(torch.addmm(layer.fc[0], h, layer.fc[1]))
            x = torch.addmm(x, inner, layer.out[1]).add_(layer.out[0])
        x = F.layer_norm(x, (w,), *self.final_norm)
        state.position = p + 1
        return self.model.logits_of(x), state  # tied, through embed_proj where vectors are
