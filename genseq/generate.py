"""Text in, text out: prompts, stop conditions and streaming on top of ``BatchSampler``.

Each sample ends at ``<eos>`` (the end of a document), at the first ``--stop`` string (which is
not included, as in most generation APIs) or after ``max_new_tokens``. Text is decoded
incrementally, re-decoding only a short window of recent ids so multi-byte BPE pieces and
word spacing come out right without quadratic work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genseq.checkpoint import Checkpoint
from genseq.errors import UsageError
from genseq.sample import BatchSampler, LogitConstraint, SamplingSettings
from genseq.tokenization import Tokenizer

BLOCK_TOKENS = 64  # most tokens drawn between two reads on the host
MAX_NEW_TOKENS = 500  # a sample's length when none is asked for


@dataclass
class Sample:
    index: int
    text: str = ""
    tokens: int = 0
    finish_reason: str = "length"  # length | eos | stop
    ids: list[int] = field(default_factory=list)


class IncrementalDetokenizer:
    """Turns a growing id list into text pieces (the prefix/read-offset method of TGI/vLLM)."""

    def __init__(self, tokenizer: Tokenizer, context: Sequence[int] = ()) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = list(context[-4:])  # a little context for spacing rules
        self.prefix_offset = 0
        self.read_offset = len(self.ids)

    def push(self, token: int) -> str:
        return self.push_many([token])

    def push_many(self, tokens: Sequence[int]) -> str:
        """The text that ``tokens`` add (two decodes per call, whatever their number)."""
        self.ids.extend(tokens)
        prefix = self.tokenizer.decode(self.ids[self.prefix_offset : self.read_offset])
        text = self.tokenizer.decode(self.ids[self.prefix_offset :])
        if len(text) > len(prefix) and not text.endswith("\ufffd"):
            self.prefix_offset = self.read_offset
            self.read_offset = len(self.ids)
            if self.prefix_offset > 4096:  # keep the window, not the whole sample
                del self.ids[: self.prefix_offset]
                self.read_offset -= self.prefix_offset
                self.prefix_offset = 0
            return text[len(prefix) :]
        return ""


@dataclass
class PromptInfo:
    ids: list[int]
    unknown: list[str]


def encode_prompt(tokenizer: Tokenizer, prompt: str) -> PromptInfo:
    """``<eos>`` (document start) followed by the prompt's ids; unknown pieces are listed."""
    encoded = np.asarray(tokenizer.encode(prompt) if prompt else [], dtype=np.int64)
    ids = encoded.tolist()
    ids.insert(0, tokenizer.eos_id)  # in place, not a second list of the whole prompt
    return PromptInfo(ids, _unknown_pieces(tokenizer, prompt, encoded))


def _unknown_pieces(tokenizer: Tokenizer, prompt: str, ids: np.ndarray) -> list[str]:
    """The characters read as ``<unk>`` (char level) or how many pieces were (other levels);
    each distinct character is looked up once, however long the prompt."""
    unk = tokenizer.unk_id
    count = int(np.count_nonzero(ids == unk))
    if not count:
        return []
    if tokenizer.level == "char":
        return sorted(c for c in set(prompt) if tokenizer.encode(c)[0] == unk)
    return [f"{count} piece(s)"]


def generate(
    ckpt: Checkpoint,
    prompt: str = "",
    settings: SamplingSettings | None = None,
    *,
    max_new_tokens: int = MAX_NEW_TOKENS,
    num_samples: int = 1,
    stop: Sequence[str] = (),
    seed: int | None = None,
    on_text: Callable[[int, str], None] | None = None,
    constraint: LogitConstraint | None = None,
    stop_at_eos: bool = True,
    prompt_ids: Sequence[int] | None = None,
) -> list[Sample]:
    """Sample ``num_samples`` continuations of ``prompt``; ``on_text(i, piece)`` streams them.

    ``prompt_ids`` (starting with ``<eos>``) replaces ``prompt`` when the caller has encoded
    it already (tunes, whose header tokens come from options).
    """
    settings = settings or SamplingSettings()
    settings.validate()
    if max_new_tokens < 1:
        raise UsageError("--max-new-tokens must be at least 1")
    if num_samples < 1:
        raise UsageError("--num-samples must be at least 1")
    stops = [s for s in stop if s]
    tok = ckpt.tokenizer
    info = encode_prompt(tok, prompt) if prompt_ids is None else PromptInfo(list(prompt_ids), [])
    device = next(ckpt.model.parameters()).device
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()  # nondeterministic, and leaves torch's global generator alone
    else:
        generator.manual_seed(seed)
    sampler = BatchSampler(
        ckpt.model,
        info.ids,
        num_samples,
        settings,
        generator,
        banned_ids=tok.never_generate,
        constraint=constraint,
    )
    samples = [Sample(i) for i in range(num_samples)]
    context = info.ids[max(1, len(info.ids) - 4) :]  # the prompt's last ids, for spacing
    detok = [IncrementalDetokenizer(tok, context) for _ in range(num_samples)]
    hold = max((len(s) for s in stops), default=1) - 1  # text held back while a stop may form
    emitted = [0] * num_samples
    active = list(range(num_samples))
    eos = tok.eos_id if stop_at_eos else None
    done = 0
    block = 1  # tokens per block: 1, 2, 4 ... BLOCK_TOKENS, so the first text comes at once
    while active and done < max_new_tokens:
        steps = min(block, max_new_tokens - done)
        rows = sampler.take(steps).tolist()  # one host transfer per block
        done += steps
        block = min(2 * block, BLOCK_TOKENS)
        still = []
        for i in active:
            s = samples[i]
            ids = rows[i]
            if eos is not None and eos in ids:
                ids = ids[: ids.index(eos)]
                s.finish_reason = "eos"
            if stops:
                _extend_with_stops(s, ids, detok[i], stops, hold)
            elif ids:
                s.ids.extend(ids)
                s.tokens += len(ids)
                s.text += detok[i].push_many(ids)
            if s.finish_reason == "length":
                still.append(i)
                safe = len(s.text) - hold
            else:
                safe = len(s.text)
            if on_text is not None and safe > emitted[i]:
                on_text(i, s.text[emitted[i] : safe])
                emitted[i] = safe
        active = still
    for i in active:  # ran out of tokens: flush the held-back tail
        if on_text is not None and len(samples[i].text) > emitted[i]:
            on_text(i, samples[i].text[emitted[i] :])
    return samples


def preview(model: torch.nn.Module, tokenizer: Tokenizer, tokens: int) -> str:
    """A sample of a model in training (seed 0), its training mode left as it was."""
    was_training = model.training
    model.eval()
    try:
        ckpt = Checkpoint(Path("."), {}, model, tokenizer)  # type: ignore[arg-type]
        return generate(ckpt, "", max_new_tokens=tokens, seed=0)[0].text
    finally:
        model.train(was_training)


def _extend_with_stops(
    s: Sample, ids: list[int], detok: IncrementalDetokenizer, stops: list[str], hold: int
) -> None:
    """Add ``ids`` one at a time, ending the sample before the first stop string."""
    for t in ids:
        s.ids.append(t)
        s.tokens += 1
        before = len(s.text)
        s.text += detok.push(t)
        start = max(0, before - hold)  # a new stop string must end in the new piece
        hits = [p for p in (s.text.find(x, start) for x in stops) if p >= 0]
        if hits:
            s.text = s.text[: min(hits)]
            s.finish_reason = "stop"
            return
