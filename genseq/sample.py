"""Batched incremental decoding with logit processors.

``BatchSampler`` runs the prompt once, copies its recurrent state to every sample, then advances
all samples together one token per step: the prefix is never re-run. The prompt is read
``PROMPT_WINDOW`` tokens at a time (``read_prompt``), so its length never sets the peak memory.
Each step's logits pass through the processors below before one draw from an explicit
``torch.Generator``, so the same checkpoint, seed and device give the same tokens. Masks come
first (banned ids and an optional per-step mask from a ``LogitConstraint``); repetition
penalty, temperature, top-k, top-p and min-p then act on the allowed tokens only, so every
setting means the same with or without a grammar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from genseq.decode_step import LstmDecodeStep
from genseq.errors import GenseqError, UsageError
from genseq.model import RecurrentLM, State, expand_state
from genseq.transformer_decode import TransformerDecodeStep

NOISE_BLOCK_STEPS = 64  # steps of sampling noise drawn at once
NOISE_BLOCK_ELEMENTS = 1 << 20  # ... but at most this many floats (4 MB)
# Prompt tokens read into the model at once. A window's activations (about 7 KB a token for a
# 2x256 LSTM) and its logits (4 bytes a token and vocabulary entry) are the peak memory of
# reading a prompt of any length; longer windows read no faster.
PROMPT_WINDOW = 256


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0  # 0 means greedy
    top_k: int | None = None  # keep the k most likely tokens
    top_p: float | None = None  # keep the smallest set with this much probability (nucleus)
    min_p: float | None = None  # drop tokens below min_p x the most likely token's probability
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the prompt or sample
    greedy: bool = False

    def validate(self) -> None:
        for name in ("temperature", "top_p", "min_p", "repetition_penalty"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise UsageError(f"--{name.replace('_', '-')} must be a finite number")
        if self.temperature < 0:
            raise UsageError("--temperature must be >= 0 (0 means greedy)")
        if self.top_k is not None and self.top_k < 1:
            raise UsageError("--top-k must be at least 1")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UsageError("--top-p must be in (0, 1]")
        if self.min_p is not None and not 0 <= self.min_p <= 1:
            raise UsageError("--min-p must be in [0, 1]")
        if self.repetition_penalty <= 0:
            raise UsageError("--repetition-penalty must be positive")

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0

    @property
    def filters(self) -> bool:
        """Whether top-k, top-p or min-p can remove tokens (``filter_logits`` does more than
        divide by the temperature)."""
        return (
            self.top_k is not None
            or (self.top_p is not None and self.top_p < 1.0)
            or (self.min_p is not None and self.min_p > 0)
        )


class LogitConstraint(Protocol):
    """A per-step mask of allowed tokens (music grammars plug in here)."""

    def start(self, batch_size: int, device: torch.device) -> None: ...
    def allowed(self) -> torch.Tensor: ...  # (B, V) bool
    def advance(self, tokens: torch.Tensor) -> None: ...  # (B,)


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> None:
    """CTRL's penalty, in place: seen tokens' positive logits / penalty, negative x penalty."""
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    torch.where(seen, penalised, logits, out=logits)


def filter_logits(
    logits: torch.Tensor, s: SamplingSettings, allowed: torch.Tensor | None = None
) -> torch.Tensor:
    """Mask, then temperature, top-k, top-p and min-p; every removed token gets -inf.

    ``allowed`` ``(V,)`` or ``(B, V)`` (a grammar, a MIDI constraint, banned ids) applies
    first, so the filters rank and renormalise the allowed tokens only: ``top_k=1`` is the
    best allowed token, exactly as greedy decoding under the same mask.
    """
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    if s.temperature not in (0.0, 1.0):
        # Shift the best score to 0 first: a tiny temperature then sends the others to -inf
        # instead of overflowing to inf - inf = nan.
        logits = (logits - logits.max(dim=-1, keepdim=True).values) / s.temperature
    if s.top_k is not None and s.top_k < logits.size(-1):
        best = torch.topk(logits, s.top_k, dim=-1).indices
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, best, True)
        logits = logits.masked_fill(~keep, float("-inf"))
    if s.top_p is not None and s.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # probability mass ahead of each token
        drop_sorted = before >= s.top_p  # never drops the most likely token
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    if s.min_p is not None and s.min_p > 0:
        probs = torch.softmax(logits, dim=-1)
        threshold = probs.max(dim=-1, keepdim=True).values * s.min_p
        logits = logits.masked_fill(probs < threshold, float("-inf"))
    return logits


def choose(
    logits: torch.Tensor,
    s: SamplingSettings,
    generator: torch.Generator,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """One token per row: the best allowed token when greedy, else a draw from the filtered
    distribution of the allowed tokens (``filter_logits``)."""
    if s.is_greedy:
        if allowed is not None:
            logits = logits.masked_fill(~allowed, float("-inf"))
        return torch.argmax(logits, dim=-1)
    probs = torch.softmax(filter_logits(logits.float(), s, allowed), dim=-1)
    try:
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    except RuntimeError:  # nan or inf scores: a diverged or corrupt model
        raise GenseqError(
            "the model produced non-finite scores; the checkpoint may be "
            "corrupt or its training diverged"
        ) from None


def prompt_spans(length: int, window: int) -> list[slice]:
    """Consecutive spans of at most ``window`` tokens that cover ``length`` tokens, the short
    one first: the last span is a full window whenever the prompt fills one, so its logits
    come from a product of as many rows as a single pass over the prompt would use (a product
    of fewer than a few rows takes another kernel, which may round differently)."""
    if length < 1 or window < 1:
        raise ValueError("a prompt and a window hold at least one token")
    first = length % window or window
    return [slice(0, first), *(slice(a, a + window) for a in range(first, length, window))]


@torch.no_grad()
def read_prompt(
    model: RecurrentLM, prompt: torch.Tensor, window: int = PROMPT_WINDOW
) -> tuple[torch.Tensor, State]:
    """The logits ``(1, V)`` after ``prompt`` ``(1, P)`` and the state there, reading at most
    ``window`` tokens at a time with the state carried across.

    Every window but the last only advances the state (``RecurrentLM.advance``): their logits
    are never needed. The last window is one ``forward``, so a prompt that fits in a window is
    read exactly as a single pass reads it.
    """
    spans = prompt_spans(prompt.size(1), window)
    state: State | None = None
    for span in spans[:-1]:
        state = model.advance(prompt[:, span], state)
    logits, state = model(prompt[:, spans[-1]], state)
    return logits[:, -1], state


def fast_step(model: RecurrentLM, batch_size: int, device: torch.device):
    """A faster one-token step than ``model.step`` where one suits the model, the batch and
    the device (LSTMs and Transformers sampled on a CPU), else None."""
    for kind in (LstmDecodeStep, TransformerDecodeStep):
        if kind.suits(model, batch_size, device):
            return kind(model)
    return None


class BatchSampler:
    """Draws ``num_samples`` continuations of one prompt, one step at a time."""

    def __init__(
        self,
        model: RecurrentLM,
        prompt_ids: Sequence[int],
        num_samples: int,
        settings: SamplingSettings,
        generator: torch.Generator,
        banned_ids: Sequence[int] = (),
        constraint: LogitConstraint | None = None,
    ) -> None:
        if not prompt_ids:
            raise ValueError("prompt_ids must hold at least one token (e.g. <eos>)")
        settings.validate()
        self.model = model
        self.settings = settings
        self.generator = generator
        self.constraint = constraint
        device = next(model.parameters()).device
        self.device = device
        vocab = model.config.vocab_size
        prompt = torch.as_tensor(prompt_ids, dtype=torch.long, device=device).view(1, -1)
        logits, state = read_prompt(model, prompt, PROMPT_WINDOW)  # once, at batch 1
        self.logits = logits.expand(num_samples, -1).contiguous()  # (B, V)
        self.state = expand_state(state, num_samples)
        self.banned = torch.zeros(vocab, dtype=torch.bool, device=device)
        if banned_ids:
            self.banned[list(banned_ids)] = True
        self.seen = None
        if settings.repetition_penalty != 1.0:
            self.seen = torch.zeros(num_samples, vocab, dtype=torch.bool, device=device)
            self.seen[:, prompt[0]] = True
        if constraint is not None:
            constraint.start(num_samples, device)
        self._pending: torch.Tensor | None = None
        self.allowed_static = ~self.banned
        self.decoder = fast_step(model, num_samples, device)
        # The common case (temperature only) draws by Gumbel-max from noise made in blocks.
        processed = settings.is_greedy or settings.filters or self.seen is not None
        self.fast = not (processed or constraint is not None)
        self._noise: torch.Tensor | None = None
        self._noise_used = 0

    def _gumbel_noise(self) -> torch.Tensor:
        """The next step's noise ``(B, V)``: temperature x Gumbel(0, 1), banned ids at -inf.

        ``argmax(logits + T * G)`` is an exact draw from ``softmax(logits / T)`` (the
        Gumbel-max trick), so one add and one argmax replace the temperature division,
        softmax and ``multinomial`` of every step; the noise is drawn for a block of steps
        at once (at most about 4 MB) from the sampler's generator.
        """
        if self._noise is None or self._noise_used == self._noise.size(0):
            batch, vocab = self.logits.shape
            steps = max(1, min(NOISE_BLOCK_STEPS, NOISE_BLOCK_ELEMENTS // (batch * vocab)))
            noise = torch.empty(steps, batch, vocab, device=self.device)
            noise.exponential_(generator=self.generator).log_().neg_()  # Gumbel(0, 1)
            if self.settings.temperature != 1.0:
                noise.mul_(self.settings.temperature)
            noise.masked_fill_(self.banned, float("-inf"))
            self._noise, self._noise_used = noise, 0
        row = self._noise[self._noise_used]
        self._noise_used += 1
        return row

    @torch.no_grad()
    def next(self) -> torch.Tensor:
        """The next token of every sample, ``(B,)`` on the model's device."""
        if self._pending is not None:
            step = self.decoder or self.model.step
            self.logits, self.state = step(self._pending, self.state)
        if self.fast:
            tokens = torch.argmax(self.logits.float() + self._gumbel_noise(), dim=-1)
            self._pending = tokens
            return tokens
        logits = self.logits.float()
        if self.seen is not None:  # in place, so on a copy: self.logits stays the model's
            logits = logits.clone()
            apply_repetition_penalty(logits, self.seen, self.settings.repetition_penalty)
        allowed = self.allowed_static
        if self.constraint is not None:
            allowed = allowed & self.constraint.allowed()
        tokens = choose(logits, self.settings, self.generator, allowed)
        if self.seen is not None:
            self.seen[torch.arange(tokens.size(0), device=self.device), tokens] = True
        if self.constraint is not None:
            self.constraint.advance(tokens)
        self._pending = tokens
        return tokens

    @torch.no_grad()
    def take(self, steps: int) -> torch.Tensor:
        """The next ``steps`` tokens of every sample, ``(B, steps)``: callers read a block of
        tokens at once instead of one host transfer per step."""
        out = torch.empty(self.logits.size(0), steps, dtype=torch.long, device=self.device)
        for t in range(steps):
            out[:, t] = self.next()
        if not torch.isfinite(self.logits).all():
            raise GenseqError(
                "the model produced non-finite scores; the checkpoint may be "
                "corrupt or its training diverged"
            )
        return out
