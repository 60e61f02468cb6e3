"""Masks for sampling MIDI event models: no impossible event, and an exact length.

Both constraints follow ``genseq.sample.LogitConstraint``: the sampler asks ``allowed()``
before each draw and reports the drawn tokens through ``advance``. The state of the primer
(which notes sound, how much time has passed) is replayed first, so a continuation starts
where the primer ends.

* melody: ``NOTE_OFF`` only while a note sounds (a ``NO_EVENT`` before the first note is a
  rest, which is allowed); ``<eos>`` only after ``steps`` new steps, and then nothing else,
  so every sample lasts exactly as long as asked.
* performance: ``NOTE_ON(p)`` only while ``p`` is silent; ``NOTE_OFF(p)`` only while ``p``
  sounds and after time has passed since it started (no zero-length notes); a
  ``TIME_SHIFT`` only as far as the time asked for, and ``<eos>`` exactly there.

Notes still sounding at the end are closed by the decoders (``midi_encoding``), so a sample
never leaves a note hanging.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genseq.music.midi_encoding import NOTE_OFF, NOTE_ON, TIME_SHIFT


class _Replayed:
    """Shared by both: the vocabulary's event ids, and replaying the primer at ``start``."""

    def __init__(self, tokenizer, prompt_ids: Sequence[int], steps: int) -> None:
        self.vocab = tokenizer.vocab_size
        self.eos = tokenizer.eos_id
        self.tokens = tokenizer.tokens_of(range(self.vocab))
        self.banned = set(tokenizer.never_generate) | {self.eos}
        self.prompt = [int(i) for i in prompt_ids if int(i) != self.eos]
        self.steps = steps

    def events_mask(self, device: torch.device) -> torch.Tensor:
        mask = torch.ones(self.vocab, dtype=torch.bool, device=device)
        mask[sorted(self.banned)] = False
        return mask

    def lookup(self, prefix: str, device: torch.device, offset: int = 0) -> torch.Tensor:
        """For every id: the number after ``prefix`` in its token, or -1."""
        values = [int(t[len(prefix) :]) if t.startswith(prefix) else -1 for t in self.tokens]
        return torch.tensor(values, dtype=torch.long, device=device)

    def replay(self, batch_size: int, device: torch.device) -> None:
        for token in self.prompt:
            self.advance(torch.full((batch_size,), token, dtype=torch.long, device=device))

    def advance(self, tokens: torch.Tensor) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class MelodyConstraint(_Replayed):
    def start(self, batch_size: int, device: torch.device) -> None:
        self.base = self.events_mask(device)
        self.is_on = self.lookup(NOTE_ON, device) >= 0
        self.off = self.tokens.index(NOTE_OFF)
        self.sounding = torch.zeros(batch_size, dtype=torch.bool, device=device)
        self.replay(batch_size, device)
        self.done = torch.zeros(batch_size, dtype=torch.long, device=device)

    def allowed(self) -> torch.Tensor:
        allowed = self.base.expand(self.sounding.size(0), -1).clone()
        allowed[:, self.off] = self.sounding
        finished = self.done >= self.steps
        allowed[finished] = False
        allowed[finished, self.eos] = True
        return allowed

    def advance(self, tokens: torch.Tensor) -> None:
        self.sounding = (self.sounding | self.is_on[tokens]) & (tokens != self.off)
        if hasattr(self, "done"):
            self.done += 1


class PerformanceConstraint(_Replayed):
    def start(self, batch_size: int, device: torch.device) -> None:
        self.base = self.events_mask(device)
        self.on_pitch = self.lookup(NOTE_ON, device)
        self.off_pitch = self.lookup(NOTE_OFF + "_", device)
        self.shift = self.lookup(TIME_SHIFT, device).clamp(min=0)
        self.on_ids = torch.nonzero(self.on_pitch >= 0).squeeze(1)
        self.off_ids = torch.nonzero(self.off_pitch >= 0).squeeze(1)
        self.shift_ids = torch.nonzero(self.shift > 0).squeeze(1)
        # Every pitch 0-127 has both tokens in the performance vocabulary, in pitch order.
        assert self.on_pitch[self.on_ids].tolist() == list(range(128))
        assert self.off_pitch[self.off_ids].tolist() == list(range(128))
        self.sounding = torch.zeros(batch_size, 128, dtype=torch.bool, device=device)
        self.since = torch.zeros(batch_size, 128, dtype=torch.long, device=device)
        self.now = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.rows = torch.arange(batch_size, device=device)
        self.replay(batch_size, device)
        self.end = self.now + self.steps

    def allowed(self) -> torch.Tensor:
        allowed = self.base.expand(self.now.size(0), -1).clone()
        allowed[:, self.on_ids] &= ~self.sounding
        allowed[:, self.off_ids] &= self.sounding & (self.since < self.now[:, None])
        room = (self.end - self.now)[:, None]
        allowed[:, self.shift_ids] &= self.shift[self.shift_ids][None, :] <= room
        finished = self.now >= self.end
        allowed[finished] = False
        allowed[finished, self.eos] = True
        return allowed

    def advance(self, tokens: torch.Tensor) -> None:
        on, off = self.on_pitch[tokens], self.off_pitch[tokens]
        started = on >= 0
        if started.any():
            self.sounding[self.rows[started], on[started]] = True
            self.since[self.rows[started], on[started]] = self.now[started]
        stopped = off >= 0
        if stopped.any():
            self.sounding[self.rows[stopped], off[stopped]] = False
        self.now = self.now + self.shift[tokens]


__all__ = ["MelodyConstraint", "PerformanceConstraint"]
