"""Constrained decoding for ABC: a small state machine that masks every impossible token.

It plugs into ``sample.BatchSampler`` as a ``LogitConstraint``: before each draw it says, for
every sample, which tokens keep the tune valid. With it on, every sample

* starts with a meter and a key, then the body;
* fills every bar exactly to the meter's length, except the pickup (first) bar, a bar that
  closes a section (``:|`` ``||`` ``|]``) and completes the section's short first bar, and a
  short bar after a repeat or section sign that completes the short bar before it (a bar
  split across the sign) - the rules `genseq music stats` checks real tunes with;
* never runs a tuplet, a chord, a broken rhythm or a tie past its end or across a bar line;
* balances its repeats and endings: ``|:`` is not nested, ``[1`` sits inside a repeat right
  after a bar line and must close with ``:|`` followed at once by ``[2``;
* ends (``<eos>``) only after a section end with nothing left open, and within
  ``max_tokens``: near the limit it keeps only the longest durations that still fit, and
  closes the tune as soon as it can.

Feasibility is exact: a note or duration is allowed only if the bar can still be filled with
the durations the vocabulary has (a memoised search over the few remainders a bar can have).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from genseq.music.abc_vocab import DEFAULT_UNIT, default_tuplet_q, info

MAX_CHORD_NOTES = 4
MAX_PREFIXES = 2  # chord symbols, decorations, grace notes before one note
CLOSING_RESERVE = 48  # tokens kept back to close a tune within max_tokens
ENDING2_MAX = 4  # bars in a second ending
SECTION_CLOSE = (":|", "||", "|]")
SECTION_START = ("|:", ":|", "||", "|]")  # the bar after one of these opens a section


@dataclass
class _State:
    """Where one sample is in its tune."""

    phase: str = "meter"  # meter | key | unit | body
    bar: Fraction = Fraction(1)  # bar length in whole notes
    meter: tuple[int, int] = (4, 4)
    unit: Fraction = DEFAULT_UNIT
    pos: Fraction = Fraction(0)  # committed time in the current bar
    bars: int = 0  # bars closed so far
    section_new: bool = True  # the current bar opens a section (the tune, or after |: :| || |])
    section_first: Fraction | None = None  # length of the section's first bar
    split_from: Fraction | None = None  # a short bar just closed at a repeat or section sign
    section_bars: int = 0  # bars closed since the section began
    # the element being written (note, rest or chord) and its duration factor
    pending: str | None = None  # None | "note" | "rest" | "chord"
    pending_factor: Fraction = Fraction(1)
    last_element: str | None = None  # kind of the last committed element in this bar
    last_duration: Fraction = Fraction(0)  # its duration, for broken rhythm
    last_broken_ok: bool = False
    chord_notes: int = -1  # -1 outside a chord
    tuplet_left: int = 0
    tuplet_factor: Fraction = Fraction(1)
    next_factor: Fraction = Fraction(1)  # broken rhythm's factor for the next element
    tie: bool = False  # a tie waits for its note
    prefixes: int = 0
    after_bar: bool = False  # the last token was a bar line
    last_bar: str | None = None
    repeat_open: bool = False  # an explicit |: is open
    ending: int = 0  # 0, 1 or 2
    ending_bars: int = 0
    expect_ending2: bool = False
    done: bool = False
    tokens: int = 0


class AbcConstraint:
    """The ABC grammar as a per-step mask over a vocabulary (see the module docstring)."""

    def __init__(self, tokenizer, prompt_ids: list[int] | tuple = (), max_tokens: int = 1000):
        self.tokenizer = tokenizer
        self.vocab = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
        self.infos = [info(t) for t in self.vocab]
        self.eos = tokenizer.eos_id
        self.max_tokens = max_tokens
        self.prompt = [int(i) for i in prompt_ids]
        v = len(self.vocab)

        def ids(pred) -> np.ndarray:
            return np.array([i for i, x in enumerate(self.infos) if pred(x)], dtype=np.int64)

        self.meters = ids(lambda x: x.kind == "meter")
        self.keys = ids(lambda x: x.kind == "key")
        self.units = ids(lambda x: x.kind == "unit")
        self.notes = ids(lambda x: x.kind == "note")
        self.rests = ids(lambda x: x.kind == "rest")
        self.chord_start = ids(lambda x: x.kind == "chord_start")
        self.chord_end = ids(lambda x: x.kind == "chord_end")
        self.prefix = ids(lambda x: x.kind in ("chord_symbol", "decoration", "grace"))
        self.ties = ids(lambda x: x.kind == "tie")
        self.broken = ids(lambda x: x.kind == "broken")
        self.tuplets = ids(lambda x: x.kind == "tuplet")
        self.durations = ids(lambda x: x.kind == "duration")
        self.duration_values = [self.infos[i].value for i in self.durations]
        bars = (":|", "|:", "|", "||", "|]")
        self.bar_ids = {t: i for i, t in enumerate(self.vocab) if t in bars}
        self.endings = {self.infos[i].ending: i for i in ids(lambda x: x.kind == "ending")}
        self.v = v
        self.multipliers = sorted({Fraction(1), *self.duration_values})
        self.reserve = min(CLOSING_RESERVE, max_tokens // 4)
        self._memo: dict = {}
        self.states: list[_State] = []

    # -- the LogitConstraint protocol ------------------------------------------------------------
    def start(self, batch_size: int, device: torch.device) -> None:
        self.device = device
        state = _State()
        history: list[str] = []
        for i in self.prompt:
            if i == self.eos and state.phase == "meter" and not history:
                continue  # the document start
            if not self._allowed(state)[i]:
                from genseq.errors import UsageError

                raise UsageError(
                    f"the prompt is not a valid tune start at {self.vocab[i]!r} (after "
                    f"{' '.join(history[-8:]) or 'nothing'}); pass --no-constrain to "
                    "sample from it anyway"
                )
            self._advance(state, i)
            history.append(self.vocab[i])
        self.states = [_copy(state) for _ in range(batch_size)]

    def allowed(self) -> torch.Tensor:
        masks = np.stack([self._allowed(s) for s in self.states])
        return torch.from_numpy(masks).to(self.device)

    def advance(self, tokens: torch.Tensor) -> None:
        for state, token in zip(self.states, tokens.tolist(), strict=True):
            self._advance(state, token)

    # -- feasibility ----------------------------------------------------------------------------
    def _targets(self, s: _State) -> tuple[Fraction, ...] | None:
        """Remainders at which the current bar may close; None: any (the pickup bar)."""
        if s.bars == 0:
            return None
        targets = {Fraction(0)}
        short = self._short_length(s)
        if short is not None:
            targets.add(s.bar - short)
        return tuple(sorted(targets))

    @staticmethod
    def _short_length(s: _State) -> Fraction | None:
        """The one short length the current bar may have (see ``_bar_ok``), if any."""
        if s.section_new and s.split_from is not None and s.split_from < s.bar:
            return s.bar - s.split_from  # completes the bar split across the sign before it
        if not s.section_new and s.section_first is not None and s.section_first < s.bar:
            return s.bar - s.section_first  # closes the section, completing its first bar
        return None

    def _fillable(
        self, s: _State, remaining: Fraction, left: int, factor: Fraction, nxt: Fraction
    ) -> bool:
        """Can elements bring ``remaining`` to a bar end this bar may have?

        ``left`` elements still belong to a tuplet (scaled by ``factor``); the next element is
        also scaled by ``nxt`` (broken rhythm).
        """
        key = (remaining, left, factor, nxt, s.unit, self._targets(s))
        found = self._memo.get(key)
        if found is None:
            found = self._search(*key)
            self._memo[key] = found
        return found

    def _search(self, remaining, left, factor, nxt, unit, targets) -> bool:
        if remaining < 0:
            return False
        if left == 0 and nxt == 1 and (targets is None or remaining in targets):
            return True
        return self._one_fits(remaining, left, factor, nxt, unit, targets)

    def _one_fits(self, remaining, left, factor, nxt, unit, targets) -> bool:
        """Whether one more element (then a completion) fits."""
        scale = nxt * (factor if left else 1)
        next_left = max(left - 1, 0)
        next_factor = factor if next_left else Fraction(1)
        for m in self.multipliers:
            length = unit * m * scale
            if length > remaining:
                break  # multipliers are sorted
            key = (remaining - length, next_left, next_factor, Fraction(1), unit, targets)
            found = self._memo.get(key)
            if found is None:
                found = self._search(*key)
                self._memo[key] = found
            if found:
                return True
        return False

    def _element_fits(self, c: _State) -> bool:
        """A new note, rest or chord can start here and the bar still be completed."""
        if c.pos > c.bar:
            return False
        left = c.tuplet_left
        factor = c.tuplet_factor if left else Fraction(1)
        return self._one_fits(c.bar - c.pos, left, factor, c.next_factor, c.unit, self._targets(c))

    def _settled(self, c: _State) -> bool:
        """The state is consistent: the bar can still be completed from here."""
        if c.pos > c.bar:
            return False
        left = c.tuplet_left
        factor = c.tuplet_factor if left else Fraction(1)
        return self._fillable(c, c.bar - c.pos, left, factor, c.next_factor)

    # -- the mask -------------------------------------------------------------------------------
    def _allowed(self, s: _State) -> np.ndarray:
        mask = np.zeros(self.v, dtype=bool)
        if s.done:
            mask[self.eos] = True
        elif s.phase == "meter":
            mask[self.meters] = True
        elif s.phase == "key":
            mask[self.keys] = True
        else:
            if s.phase == "unit":
                mask[self.units] = True
            self._body(s, mask)
        if not mask.any():
            mask[self.eos] = True  # never a dead end
        return mask

    def _closing(self, s: _State) -> bool:
        return s.tokens >= self.max_tokens - self.reserve

    def _body(self, s: _State, mask: np.ndarray) -> None:
        closing = self._closing(s)
        if s.expect_ending2:
            if 2 in self.endings:
                mask[self.endings[2]] = True
            return
        if s.chord_notes >= 0:  # inside [ ... ]
            if s.chord_notes < MAX_CHORD_NOTES:
                mask[self.notes] = True
            if s.chord_notes >= 2:
                mask[self.chord_end] = True
            return
        if s.pending is not None:
            self._durations(s, mask, closing)
        c = _commit_preview(s)  # as if the pending element had no duration token
        if not self._settled(c):
            return  # only a duration can save the bar
        if self._element_fits(c):
            mask[self.notes] = True
            if not s.tie:
                mask[self.rests] = True
                if not closing:
                    mask[self.chord_start] = True
                    if s.prefixes < MAX_PREFIXES:
                        mask[self.prefix] = True
        if s.prefixes:
            return  # a prefix must be followed by its element
        if not closing and not s.tie:
            self._after_element(s, c, mask)
        if c.tuplet_left or c.next_factor != 1:
            return
        for token, i in self.bar_ids.items():
            if self._bar_ok(c, token, closing):
                mask[i] = True
        if s.tie:
            return
        if not closing and c.pos < c.bar:
            self._tuplets(c, mask)
        if s.after_bar:
            if not closing:
                mask[self.keys] = True  # a key change at a bar line
                self._endings(s, mask)
            if s.last_bar in SECTION_CLOSE and self._may_end(s):
                if closing:
                    mask[:] = False
                mask[self.eos] = True

    def _durations(self, s: _State, mask: np.ndarray, closing: bool) -> None:
        """Duration tokens that keep the bar fillable (only the longest when closing)."""
        left = s.tuplet_left
        after_factor = s.tuplet_factor if left > 1 else Fraction(1)
        best = -1
        for i, value in zip(self.durations, self.duration_values, strict=True):
            remaining = s.bar - s.pos - s.unit * value * s.pending_factor
            if remaining >= 0 and self._fillable(
                s, remaining, max(left - 1, 0), after_factor, Fraction(1)
            ):
                mask[i] = True
                if best < 0 or value > self.infos[best].value:
                    best = int(i)
        if closing and best >= 0:
            mask[self.durations] = False
            mask[best] = True

    def _after_element(self, s: _State, c: _State, mask: np.ndarray) -> None:
        """Ties and broken rhythm after a note or chord."""
        kind = s.pending or s.last_element
        if kind not in ("note", "chord"):
            return
        if c.tuplet_left == 0 and c.next_factor == 1:
            mask[self.ties] = True
        if not c.last_broken_ok or c.tuplet_left:
            return
        for i in self.broken:
            first, second = self.infos[i].factors
            trial = _copy(c)
            trial.pos = c.pos + c.last_duration * (first - 1)
            trial.next_factor = second
            if trial.pos < trial.bar and self._element_fits(trial):
                mask[i] = True

    def _tuplets(self, c: _State, mask: np.ndarray) -> None:
        for i in self.tuplets:
            p, q, r = self.infos[i].tuplet
            factor = Fraction(q or default_tuplet_q(p, c.meter), p)
            if self._fillable(c, c.bar - c.pos, r, factor, Fraction(1)):
                mask[i] = True

    def _bar_ok(self, c: _State, token: str, closing: bool) -> bool:
        """Whether ``token`` may close the current bar here."""
        if c.pos > c.bar or (c.tie and token != "|"):
            return False
        if c.pos == 0:  # an empty bar: only an opening |: at the start or after a section end
            return (
                token == "|:"
                and not c.repeat_open
                and c.ending == 0
                and (c.bars == 0 or c.last_bar in SECTION_CLOSE)
                and not closing
                and not c.tie
            )
        if token == "|:" and (c.repeat_open or c.ending == 1 or closing):
            return False
        if token == ":|" and (
            c.ending >= 2 or not (c.repeat_open or c.ending == 1 or c.section_bars >= 1)
        ):
            return False
        if token in ("||", "|]") and (c.ending == 1 or c.repeat_open):
            return False
        if token == "|" and (closing or (c.ending == 2 and c.ending_bars + 1 >= ENDING2_MAX)):
            if not c.tie:  # only a tied note may still cross into one more bar
                return False
        if c.pos == c.bar:
            return True
        if c.bars == 0:
            return token in ("|", "|:")  # the pickup
        if c.pos != self._short_length(c):
            return False
        return c.section_new or token in SECTION_CLOSE

    def _endings(self, s: _State, mask: np.ndarray) -> None:
        if (
            1 in self.endings
            and s.ending == 0
            and s.last_bar == "|"
            and (s.repeat_open or s.section_bars >= 1)
        ):
            mask[self.endings[1]] = True

    def _may_end(self, s: _State) -> bool:
        return (
            s.bars >= 2
            and not s.repeat_open
            and s.ending != 1
            and not s.expect_ending2
            and not s.tie
            and s.chord_notes < 0
            and s.tuplet_left == 0
        )

    # -- advancing ------------------------------------------------------------------------------
    def _advance(self, s: _State, token: int) -> None:
        s.tokens += 1
        t = self.infos[token]
        if token == self.eos:
            s.done = True
            return
        kind = t.kind
        if s.phase == "meter":
            if kind == "meter":
                _set_meter(s, t)
                s.phase = "key"
            return
        if s.phase == "key":
            if kind == "key":
                s.phase = "unit" if len(self.units) else "body"
            return
        if s.phase == "unit":
            s.phase = "body"
            if kind == "unit":
                s.unit = t.value
                return
        if kind == "duration":
            _commit(s, t.value)
            return
        if s.chord_notes >= 0:
            if kind == "note":
                s.chord_notes += 1
            elif kind == "chord_end":
                s.chord_notes = -1
                s.pending = "chord"
            return
        if kind not in ("tie", "broken") and s.pending is not None:
            _commit(s, Fraction(1))
        if kind in ("note", "rest", "chord_start"):
            s.prefixes = 0
            s.after_bar = False
            s.tie = False if kind == "note" else s.tie
            factor = s.next_factor * (s.tuplet_factor if s.tuplet_left else Fraction(1))
            s.next_factor = Fraction(1)
            s.pending_factor = factor
            if kind == "chord_start":
                s.chord_notes = 0
            else:
                s.pending = kind
            return
        if kind in ("chord_symbol", "decoration", "grace"):
            s.prefixes += 1
            s.after_bar = False
            return
        if kind == "tie":
            if s.pending is not None:
                _commit(s, Fraction(1))
            s.tie = True
            return
        if kind == "broken":
            if s.pending is not None:
                _commit(s, Fraction(1))
            first, second = t.factors
            s.pos += s.last_duration * (first - 1)
            s.next_factor = second
            s.last_broken_ok = False
            return
        if kind == "tuplet":
            p, q, r = t.tuplet
            s.tuplet_left = r
            s.tuplet_factor = Fraction(q or default_tuplet_q(p, s.meter), p)
            s.after_bar = False
            return
        if kind == "bar":
            self._close_bar(s, t.text)
            return
        if kind == "ending":
            s.after_bar = False
            s.ending = t.ending
            s.ending_bars = 0
            s.expect_ending2 = False
            return
        if kind == "key":
            s.after_bar = False
            return
        if kind == "meter":
            _set_meter(s, t)

    def _close_bar(self, s: _State, token: str) -> None:
        length = s.pos
        s.tie = False if token != "|" else s.tie
        if length > 0:
            if s.section_new:
                s.section_first = length
                s.section_new = False
            s.split_from = length if length < s.bar and token in SECTION_START else None
            s.bars += 1
            s.section_bars += 1
            if s.ending:
                s.ending_bars += 1
        if token in SECTION_START:
            s.section_new = True
        s.pos = Fraction(0)
        s.last_element = None
        s.last_broken_ok = False
        s.after_bar = True
        s.last_bar = token
        if token == "|:":
            s.repeat_open = True
            s.section_bars = 0
            s.ending = 0
        elif token == ":|":  # after a first ending, the second must follow at once
            s.expect_ending2 = s.ending == 1
            s.repeat_open = False
            s.ending = 1 if s.expect_ending2 else 0
            s.section_bars = 0
        elif token in ("||", "|]"):
            s.repeat_open = False
            s.ending = 0
            s.section_bars = 0


def _set_meter(s: _State, t) -> None:
    s.meter = t.meter
    s.bar = t.value


def _commit(s: _State, multiplier: Fraction) -> None:
    """The pending element ends: its duration is unit x multiplier x its factor."""
    length = s.unit * multiplier * s.pending_factor
    s.pos += length
    s.last_element = s.pending
    s.last_duration = length
    s.last_broken_ok = s.tuplet_left == 0 and s.pending_factor == 1
    s.pending = None
    s.pending_factor = Fraction(1)
    if s.tuplet_left:
        s.tuplet_left -= 1
        if s.tuplet_left == 0:
            s.tuplet_factor = Fraction(1)


def _commit_preview(s: _State) -> _State:
    if s.pending is None:
        return s
    c = _copy(s)
    _commit(c, Fraction(1))
    return c


def _copy(s: _State) -> _State:
    return dataclasses.replace(s)
