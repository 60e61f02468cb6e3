"""Constrained decoding for ABC: a small state machine that masks every impossible token.

It plugs into ``sample.BatchSampler`` as a ``LogitConstraint``: before each draw it says, for
every sample, which tokens keep the tune valid. The rules are those the reference ABC programs
(``abc2midi``, ``abcm2ps``) check, so that every program reads a sampled tune alike. With it
on, every sample

* starts with a meter and a key (a rhythm before them, a tempo after, where the vocabulary
  has them), then the body; a hornpipe is in 2/4 or 4/4, and its broken rhythms start on
  the beat (abc2midi's rules: it swings a hornpipe's off-beat notes itself);
* fills every bar exactly to the meter's length, except the pickup (first) bar. A section that
  opens with a short bar (a pickup) closes (``:|`` ``||`` ``|]``) with the bar that completes
  it, so that a repeat, or the next section's pickup, lands on the beat; a section that opens
  with a full bar closes with a full bar;
* ties a note only to the same note written again: within the bar, or across a plain ``|``
  when no program can read the two as different pitches (the note has its own accidental,
  or none is held on its letter in any octave, since programs differ on whether an
  accidental holds across octaves);
* writes every note at a length that staff notation draws as one note (up to three dots),
  broken rhythm (``>`` ``<``) only between two elements of equal written length, and a
  tuplet's notes (never chords) all of one length; a tuplet without its ``q`` only where the
  standard fixes it (``(2`` ``(3`` ``(4``: programs disagree on ``(5`` in 3/4, say);
* never runs a tuplet, a chord, a broken rhythm or a tie past its end or across a bar line
  (a tie may cross a plain ``|``);
* balances its repeats and endings: ``|:`` is not nested; ``:|`` without ``|:`` repeats only
  the tune's first section; ``[1`` opens inside a repeated section, right after a bar line,
  runs at most ``ENDING_MAX`` bars and no longer than the bars before it, and closes with
  ``:|`` followed at once by ``[2``, which runs exactly as many bars and closes the section;
* writes ``|]`` only as the tune's last bar line, and ends (``<eos>``) only after a section
  end with nothing left open, within ``max_tokens``: near the limit it keeps only the longest
  durations that still fit, and closes the tune as soon as it can.

With a ``PartForm`` (the default for ``genseq sample``) the tune also has form by
construction: it has ``parts`` parts, each exactly ``bars`` bars long (a pickup and the short
bar that closes the part count as one), a first ending runs to the part's end and the second
as long; each part ends on a note of the tonic triad and the tune on the tonic (a first
ending, which leads back into the part, is free).

Feasibility is exact for the notes a bar can still take: a note or duration is allowed only
if the bar can still be completed with plain notes of the lengths the vocabulary has (a
memoised search over the few remainders a bar can have).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from genseq.errors import UsageError
from genseq.music.abc_vocab import degree, info
from genseq.music.header import RHYTHM_METERS, SWUNG_NOTE
from genseq.music.rhythm import Rhythm, drawable

MAX_CHORD_NOTES = 4
MAX_PREFIXES = 2  # chord symbols, decorations, grace notes before one note
CLOSING_RESERVE = 48  # tokens kept back to close a tune within max_tokens
ENDING_MAX = 4  # bars in a first or second ending
FIXED_TUPLETS = (2, 3, 4)  # (p with a q that ABC fixes whatever the meter
SECTION_CLOSE = (":|", "||", "|]")
SECTION_START = ("|:", ":|", "||", "|]")  # the bar after one of these opens a section
ONE = Fraction(1)


@dataclass(frozen=True)
class PartForm:
    """Parts of ``bars`` bars (None: 8, or 4 where a bar is longer than 4/4, as in 9/8 and
    12/8, as the folk corpus writes them), ``parts`` of them in a tune."""

    bars: int | None = None
    parts: int = 2

    def __post_init__(self) -> None:
        if self.bars is not None and self.bars < 1:
            raise UsageError("--bars-per-part must be at least 1")
        if self.parts < 1:
            raise UsageError("--parts must be at least 1")

    def part_length(self, bar: Fraction) -> Fraction:
        """A part's length in whole notes."""
        return bar * (self.bars or (8 if bar <= 1 else 4))


@dataclass(frozen=True)
class _Section:
    """What a first ending's bars continue from, so that the second ending does too."""

    new: bool
    first: Fraction | None
    split_from: Fraction | None
    bars: int
    part_time: Fraction


@dataclass
class _State:
    """Where one sample is in its tune."""

    phase: str = "meter"  # meter (a rhythm may come first) | key | tempo | unit | body
    bar: Fraction = ONE  # bar length in whole notes
    rhythm: Rhythm = Rhythm()  # durations: unit, tuplet, broken rhythm, the pending element
    bar_accidentals: tuple[tuple[tuple[str, int], int], ...] = ()  # (letter, octave) -> alt
    pos: Fraction = Fraction(0)  # committed time in the current bar
    bars: int = 0  # bars closed so far
    section_new: bool = True  # the current bar opens a section (the tune, or after |: :| || |])
    section_first: Fraction | None = None  # length of the section's first bar
    split_from: Fraction | None = None  # the short bar that closed the previous section
    section_bars: int = 0  # bars closed since the section began
    pending: str | None = None  # the element being written: None | note | rest | chord
    last_note: int | None = None  # the last element's token, if it was a single note
    chord_notes: int = -1  # -1 outside a chord
    tie: int | None = None  # a tie waits for this note token
    tie_may_cross: bool = False  # ... which may come after a plain bar line
    prefixes: int = 0
    after_bar: bool = False  # the last token was a bar line
    last_bar: str | None = None
    last_close: str | None = None  # the last section close (:| || |]) so far
    repeat_open: bool = False  # an explicit |: is open
    ending: int = 0  # 0, 1 or 2
    ending_bars: int = 0
    ending1_bars: int = 0
    ending_from: _Section | None = None
    expect_ending2: bool = False
    key: tuple[str, str] | None = None  # tonic and mode
    dance: str | None = None  # the rhythm token's name (``R:``), if the tune has one
    part_time: Fraction = Fraction(0)  # time of the current part's closed bars
    parts_done: int = 0
    done: bool = False
    tokens: int = 0


class AbcConstraint:
    """The ABC grammar as a per-step mask over a vocabulary (see the module docstring)."""

    def __init__(
        self,
        tokenizer,
        prompt_ids: list[int] | tuple = (),
        max_tokens: int = 1000,
        form: PartForm | None = None,
    ):
        self.tokenizer = tokenizer
        self.form = form
        self.vocab = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
        self.infos = [info(t) for t in self.vocab]
        self.eos = tokenizer.eos_id
        self.max_tokens = max_tokens
        self.prompt = [int(i) for i in prompt_ids]
        self.v = len(self.vocab)

        def ids(pred) -> np.ndarray:
            return np.array([i for i, x in enumerate(self.infos) if pred(x)], dtype=np.int64)

        self.meters = ids(lambda x: x.kind == "meter")
        self.keys = ids(lambda x: x.kind == "key")
        self.units = ids(lambda x: x.kind == "unit")
        self.rhythm_meters = {  # rhythm -> the meter ids it may take
            name: ids(lambda x, m=meters: x.kind == "meter" and x.meter in m)
            for name, meters in RHYTHM_METERS.items()
        }
        self.rhythms = ids(
            lambda x: x.kind == "rhythm" and len(self.rhythm_meters.get(x.rhythm, self.meters))
        )
        self.tempos = ids(lambda x: x.kind == "tempo")
        self.notes = ids(lambda x: x.kind == "note")
        self.rests = ids(lambda x: x.kind == "rest")
        self.chord_start = ids(lambda x: x.kind == "chord_start")
        self.chord_end = ids(lambda x: x.kind == "chord_end")
        self.prefix = ids(lambda x: x.kind in ("chord_symbol", "decoration", "grace"))
        self.ties = ids(lambda x: x.kind == "tie")
        self.broken = ids(lambda x: x.kind == "broken")
        self.tuplets = ids(
            lambda x: (
                x.kind == "tuplet" and (x.tuplet[1] is not None or x.tuplet[0] in FIXED_TUPLETS)
            )
        )
        self.durations = ids(lambda x: x.kind == "duration" and drawable(x.value))
        self.duration_values = [self.infos[i].value for i in self.durations]
        self.bar_ids = {t: i for i, t in enumerate(self.vocab) if t in (*SECTION_START, "|")}
        self.endings = {  # first and second endings; lists ([1,2) are read, never sampled
            self.infos[i].ending: i
            for i in ids(lambda x: x.kind == "ending" and len(x.passes) == 1)
        }
        self.multipliers = sorted({ONE, *self.duration_values})
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
                escape = "--form free or --no-constrain" if self.form else "--no-constrain"
                raise UsageError(
                    f"the prompt is not a valid tune start at {self.vocab[i]!r} (after "
                    f"{' '.join(history[-8:]) or 'nothing'}); pass {escape} to sample "
                    "from it anyway"
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
        short = self._short_length(s)
        if s.section_new and short is not None:
            return (s.bar - short,)  # the section's pickup, completing the bar before it
        close = (Fraction(0) if short is None else s.bar - short,)
        if not self._may_continue(s):
            return close
        if not self._may_close(s):
            return (Fraction(0),)
        if self._closing(s) and self._close_reachable(s, close):
            return close  # near the token limit: close the section in this bar if it can
        return tuple(sorted({Fraction(0), *close}))

    def _close_reachable(self, s: _State, close: tuple[Fraction, ...]) -> bool:
        """Plain notes (the pending one first, if any) can still bring the bar to ``close``."""
        rhythm = s.rhythm
        if rhythm.open or rhythm.pending_required is not None:
            return False
        remaining = s.bar - s.pos
        if s.pending is None:
            return self._search(remaining, rhythm.unit, close)
        return any(
            self._search(remaining - rhythm.length(m), rhythm.unit, close)
            for m in self.multipliers
            if rhythm.length(m) <= remaining
        )

    def _may_continue(self, s: _State) -> bool:
        """The current bar may be followed by another in the same section (endings and,
        with a form, parts have a set length)."""
        if self.form is not None and s.part_time + s.bar >= self.form.part_length(s.bar):
            return False
        if s.ending == 1:
            limit = min(ENDING_MAX, s.ending_from.bars if s.ending_from else ENDING_MAX)
            return s.ending_bars + 1 < limit
        if s.ending == 2:
            return s.ending_bars + 1 < s.ending1_bars
        return True

    def _may_close(self, s: _State) -> bool:
        """The current bar may close the section (a second ending only at its set length;
        with a form, only the part's last bar)."""
        if self.form is not None and not self._ends_part(s):
            return False
        return s.ending != 2 or s.ending_bars + 1 == s.ending1_bars

    def _ends_part(self, s: _State) -> bool:
        """With a form: the current bar, closed at its closing length, completes the part."""
        return s.part_time + self._close_length(s) == self.form.part_length(s.bar)

    def _close_length(self, s: _State) -> Fraction:
        """The length at which the current bar closes its section: a full bar, or the short
        bar that completes the section's pickup."""
        short = None if s.section_new else self._short_length(s)
        return s.bar if short is None else short

    def _cadence(self, s: _State) -> tuple[str, ...] | None:
        """The degrees the element that completes this bar must have, if it ends a part
        (a first ending leads back into its part, so it is free); None if it does not."""
        if self.form is None or s.ending == 1 or s.key is None or not self._ends_part(s):
            return None
        if s.bars == 0 or (s.section_new and self._short_length(s) is not None):
            return None  # a pickup bar never ends a part
        last = s.parts_done + 1 >= self.form.parts
        return ("tonic",) if last else ("tonic", "triad")

    @staticmethod
    def _short_length(s: _State) -> Fraction | None:
        """The one short length the current bar may have, if any (module docstring)."""
        if s.section_new and s.split_from is not None and s.split_from < s.bar:
            return s.bar - s.split_from
        if not s.section_new and s.section_first is not None and s.section_first < s.bar:
            return s.bar - s.section_first
        return None

    def _reachable(self, s: _State, remaining: Fraction) -> bool:
        """Can plain notes bring ``remaining`` to a bar end this bar may have?"""
        return remaining >= 0 and self._search(remaining, s.rhythm.unit, self._targets(s))

    def _search(self, remaining: Fraction, unit: Fraction, targets) -> bool:
        """Memoised: a bar has few remainders, and every step asks about them again."""
        key = (remaining, unit, targets)
        found = self._memo.get(key)
        if found is None:
            found = targets is None or remaining in targets or self._one_more(*key)
            self._memo[key] = found
        return found

    def _one_more(self, remaining: Fraction, unit: Fraction, targets) -> bool:
        for m in self.multipliers:
            length = unit * m
            if length > remaining:
                return False  # multipliers are sorted
            if self._search(remaining - length, unit, targets):
                return True
        return False

    def _owed_multipliers(self, c: _State) -> list[Fraction]:
        """The multipliers the open tuplet's or broken pair's elements may still take."""
        if c.rhythm.tuplet_left:
            known = c.rhythm.tuplet_multiplier
            return self.multipliers if known is None else [known]
        if c.rhythm.broken_multiplier is not None:
            return [c.rhythm.broken_multiplier]
        return [ONE]

    def _settled(self, c: _State) -> bool:
        """With nothing pending, the bar can still be completed from here."""
        remaining = c.bar - c.pos
        return any(
            self._reachable(c, remaining - c.rhythm.owed(m)) for m in self._owed_multipliers(c)
        )

    def _element_fits(self, c: _State) -> bool:
        """A new note, rest or chord can start here and the bar still be completed."""
        if c.rhythm.open:
            return self._settled(c)
        remaining = c.bar - c.pos
        return any(
            self._reachable(c, remaining - c.rhythm.unit * m)
            for m in self.multipliers
            if c.rhythm.unit * m <= remaining
        )

    def _commit_ok(self, s: _State, multiplier: Fraction) -> bool:
        """The pending element may end with ``multiplier`` (the bar can still be completed)."""
        rhythm = s.rhythm
        if rhythm.problem(multiplier) is not None:
            return False
        after = s.pos + rhythm.length(multiplier)
        owed = rhythm.owed_after(multiplier)
        end = self._part_end(s)
        if owed == 0 and end is not None and not self._cadence_room(s, end - after):
            return False
        return self._reachable(s, s.bar - after - owed)

    def _cadence_room(self, s: _State, left: Fraction) -> bool:
        """In a part's last bar an element ends the part (a note of its cadence) or leaves a
        unit or more for the last note, which is then never a fragment such as ``d/2``."""
        if left == 0:
            return self._cadential(s, s.last_note)
        return left >= s.rhythm.unit

    # -- cadences -------------------------------------------------------------------------------
    def _part_end(self, s: _State) -> Fraction | None:
        """Where in this bar the part ends, if its last element must make a cadence."""
        return None if self._cadence(s) is None else self._close_length(s)

    def _cadential(self, s: _State, note_id: int | None) -> bool:
        """``note_id`` (the pending element's note, None for a rest or chord) ends the part."""
        wanted = self._cadence(s)
        if note_id is None or s.pending not in (None, "note") or wanted is None:
            return False
        t = self.infos[note_id]
        held = t.accidental
        if held is None:
            held = dict(s.bar_accidentals).get((t.letter, t.octave))
        return degree(t.letter, held, *s.key) in wanted

    def _fits_before_end(self, c: _State, end: Fraction) -> bool:
        """The next element can end at least a unit before the part's end (room for a
        cadence note of a unit or more) and leave the bar completable."""
        unit = c.rhythm.unit
        room = end - unit
        if c.rhythm.broken_multiplier is not None:  # the pair's second element: its length set
            after = c.pos + c.rhythm.owed(ONE)
            return after <= room and self._reachable(c, c.bar - after)
        return any(
            c.pos + unit * m <= room and self._reachable(c, c.bar - c.pos - unit * m)
            for m in self.multipliers
        )

    # -- the mask -------------------------------------------------------------------------------
    def _allowed(self, s: _State) -> np.ndarray:
        mask = np.zeros(self.v, dtype=bool)
        if s.done or s.last_bar == "|]" or self._form_complete(s):
            mask[self.eos] = True
        elif s.phase == "meter":
            mask[self.rhythm_meters.get(s.dance, self.meters)] = True
            if s.tokens == 0:
                mask[self.rhythms] = True
        elif s.phase == "key":
            mask[self.keys] = True
        else:
            if s.phase == "tempo":
                mask[self.tempos] = True
            if s.phase in ("tempo", "unit"):
                mask[self.units] = True
            self._body(s, mask)
        if not mask.any():
            mask[self.eos] = True  # never a dead end
        return mask

    def _form_complete(self, s: _State) -> bool:
        return self.form is not None and s.parts_done >= self.form.parts and s.after_bar

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
            longest = self._durations(s, mask, closing)
            if not self._commit_ok(s, ONE) or (closing and longest > ONE):
                return  # only a duration can save the bar (or close the tune sooner)
        c = _commit_preview(s)  # as if the pending element had no duration token
        self._elements(s, c, mask, closing)
        if s.prefixes:
            return  # a prefix must be followed by its element
        if not closing and s.tie is None:
            self._after_element(s, c, mask)
        if c.rhythm.open:
            return
        self._bars(c, mask, closing)
        if s.tie is not None:
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

    def _elements(self, s: _State, c: _State, mask: np.ndarray, closing: bool) -> None:
        """Notes, rests, chords and their prefixes that may start here."""
        if not self._element_fits(c):
            return
        if s.tie is not None:
            mask[s.tie] = True
            return
        end = self._part_end(c)
        if end is not None and not self._fits_before_end(c, end):
            cadence = _copy(c)
            cadence.pending = "note"
            mask[[i for i in self.notes if self._cadential(cadence, i)]] = True
            return  # the part's last element: a note of its cadence
        mask[self.notes] = True
        mask[self.rests] = True
        if not closing and not c.rhythm.tuplet_left:  # abc2midi reads a chord's notes one by one
            mask[self.chord_start] = True
            if s.prefixes < MAX_PREFIXES:
                mask[self.prefix] = True

    def _durations(self, s: _State, mask: np.ndarray, closing: bool) -> Fraction:
        """Duration tokens that keep the bar completable (only the longest when closing);
        returns the longest multiplier allowed (0 if none is)."""
        best, longest = -1, Fraction(0)
        for i, value in zip(self.durations, self.duration_values, strict=True):
            if self._commit_ok(s, value):
                mask[i] = True
                if value > longest:
                    best, longest = int(i), value
        if closing and best >= 0:
            mask[self.durations] = False
            if longest > ONE or not self._commit_ok(s, ONE):
                mask[best] = True
        return longest

    def _after_element(self, s: _State, c: _State, mask: np.ndarray) -> None:
        """Ties (after a single note) and broken rhythm (after a note or chord)."""
        if c.rhythm.open:
            return
        if c.last_note is not None and self._tie_can_end(c):
            mask[self.ties] = True
        # The pair fills twice the first element's written length, whichever way it leans.
        pair_end = c.pos + c.rhythm.last_written
        if not self._reachable(c, c.bar - pair_end):
            return
        end = self._part_end(c)
        if end is not None and 0 < end - pair_end < c.rhythm.unit:
            return  # no room for a cadence note of a unit after the pair
        if _swung_off_beat(c):
            return
        for i in self.broken:
            if c.rhythm.broken(*self.infos[i].factors)[2] is None:
                mask[i] = True

    def _tie_can_end(self, c: _State) -> bool:
        """The note a tie here would join can follow: in this bar, or after a plain bar line
        (where it may have to make a part's cadence)."""
        trial = _copy(c)
        _tie(trial, self.infos[c.last_note])
        if self._tied_note_commits(trial):
            return True
        if not self._bar_ok(trial, "|", False):
            return False
        _close_bar(trial, "|")
        return self._tied_note_commits(trial)

    def _tied_note_commits(self, s: _State) -> bool:
        """The tied note, started here, can end with some duration the grammar allows."""
        t = dataclasses.replace(s, rhythm=s.rhythm.start(), pending="note", last_note=s.tie)
        return any(self._commit_ok(t, m) for m in self.multipliers)

    def _tuplets(self, c: _State, mask: np.ndarray) -> None:
        if self._part_end(c) is not None:
            return  # the bar that ends a part ends on one plain note
        for i in self.tuplets:
            p, q, r = self.infos[i].tuplet
            trial = dataclasses.replace(c, rhythm=c.rhythm.tuplet(p, q, r))
            if self._settled(trial):
                mask[i] = True

    def _bars(self, c: _State, mask: np.ndarray, closing: bool) -> None:
        allowed = [t for t in self.bar_ids if self._bar_ok(c, t, closing)]
        if closing and allowed == [] and self._bar_ok(c, "|", False):
            allowed = ["|"]  # a full bar that cannot close the section: go on to one that can
        for token in allowed:
            mask[self.bar_ids[token]] = True

    def _bar_ok(self, c: _State, token: str, closing: bool) -> bool:
        """Whether ``token`` may close the current bar here."""
        if c.pos > c.bar:
            return False
        if c.tie is not None and (token != "|" or not c.tie_may_cross):
            return False
        if c.pos == 0:  # an empty bar: only an opening |: at the start or after a section end
            return (
                token == "|:"
                and not c.repeat_open
                and c.ending == 0
                and (c.bars == 0 or c.last_bar in SECTION_CLOSE)
                and not closing
            )
        if not self._structure_ok(c, token, closing):
            return False
        if c.bars == 0:  # the pickup: a short one stays inside the section it leads into
            return c.pos == c.bar or token == "|"
        short = self._short_length(c)
        if c.section_new and short is not None:  # a section's pickup
            return c.pos == short and token == "|"
        if c.pos == c.bar:  # a section with a pickup closes with the bar that completes it
            return short is None or token not in SECTION_CLOSE
        return c.pos == short and token in SECTION_CLOSE

    def _structure_ok(self, c: _State, token: str, closing: bool) -> bool:
        """Repeats, endings and ``|]``: whether ``token`` may close this bar."""
        if token == "|:":
            if c.repeat_open or c.ending or closing:
                return False
            # With a form, |: after music closes a part that has no pickup, not the last one.
            return self.form is None or (
                self._may_close(c)
                and self._short_length(c) is None
                and c.parts_done + 1 < self.form.parts
            )
        if token == ":|":
            implicit = c.last_close is None and c.section_bars >= 1  # repeats the first section
            if c.ending == 2 or not (c.repeat_open or c.ending == 1 or implicit):
                return False
        if token in ("||", "|]") and (c.ending == 1 or c.repeat_open):
            return False
        if token == "|]" and not self._may_end(c, parts_after=1):
            return False
        if token == "|" and not self._may_continue(c):
            return False
        if token in SECTION_CLOSE and not self._may_close(c):
            return False
        return not (token == "|" and closing and c.tie is None and self._section_may_close(c))

    def _section_may_close(self, c: _State) -> bool:
        return any(self._structure_ok(c, t, False) for t in SECTION_CLOSE if t in self.bar_ids)

    def _endings(self, s: _State, mask: np.ndarray) -> None:
        if (
            1 in self.endings
            and s.ending == 0
            and s.last_bar == "|"
            and s.section_bars >= 1
            and (s.repeat_open or s.last_close is None)
            and self._ending_fits(s)
        ):
            mask[self.endings[1]] = True

    def _ending_fits(self, s: _State) -> bool:
        """With a form, a first ending opened here runs to the part's end: within limits."""
        if self.form is None:
            return True
        left = (self.form.part_length(s.bar) - s.part_time) / s.bar
        bars = math.ceil(left)
        return 1 <= bars <= min(ENDING_MAX, s.section_bars)

    def _may_end(self, s: _State, parts_after: int = 0) -> bool:
        """The tune may end here (``parts_after``: parts the closing bar line completes)."""
        if self.form is not None and s.parts_done + parts_after < self.form.parts:
            return False
        return (
            s.bars >= 2
            and not s.repeat_open
            and s.ending != 1
            and not s.expect_ending2
            and s.tie is None
            and s.chord_notes < 0
            and s.rhythm.tuplet_left == 0
        )

    # -- advancing ------------------------------------------------------------------------------
    def _advance(self, s: _State, token: int) -> None:
        s.tokens += 1
        t = self.infos[token]
        if token == self.eos:
            s.done = True
            return
        kind = t.kind
        if s.phase in ("meter", "key"):
            self._header(s, t)
            return
        if s.phase == "tempo":
            s.phase = self._after_tempo()
            if kind == "tempo":
                return
        if s.phase == "unit":
            s.phase = "body"
            if kind == "unit":
                s.rhythm = s.rhythm.with_unit(t.value)
                return
        if kind == "duration":
            _commit(s, t.value)
        elif s.chord_notes >= 0:
            self._in_chord(s, token)
        elif kind in ("note", "rest", "chord_start"):
            self._element(s, token)
        elif kind in ("chord_symbol", "decoration", "grace"):
            _commit_if_pending(s)
            s.prefixes += 1
            s.after_bar = False
        elif kind == "tie":
            _commit_if_pending(s)
            if s.last_note is not None:
                _tie(s, self.infos[s.last_note])
        elif kind == "broken":
            _commit_if_pending(s)
            s.rhythm, extra, _ = s.rhythm.broken(*t.factors)
            s.pos += extra
        else:
            _commit_if_pending(s)
            self._structure(s, t)

    def _header(self, s: _State, t) -> None:
        """Rhythm (first, optional), meter, key; then a tempo and a unit may follow."""
        if t.kind == "rhythm":
            s.dance = t.rhythm
        elif s.phase == "meter" and t.kind == "meter":
            _set_meter(s, t)
            s.phase = "key"
        elif s.phase == "key" and t.kind == "key":
            s.key = (t.tonic, t.mode)
            s.phase = "tempo" if len(self.tempos) else self._after_tempo()

    def _after_tempo(self) -> str:
        return "unit" if len(self.units) else "body"

    def _structure(self, s: _State, t) -> None:
        """Tuplets, bar lines, endings and key changes."""
        if t.kind == "tuplet":
            s.rhythm = s.rhythm.tuplet(*t.tuplet)
            s.after_bar = False
        elif t.kind == "bar":
            _close_bar(s, t.text)
        elif t.kind == "ending":
            _open_ending(s, t.ending)
        elif t.kind == "key":
            s.key = (t.tonic, t.mode)
            s.after_bar = False
        elif t.kind == "meter":
            _set_meter(s, t)

    def _in_chord(self, s: _State, token: int) -> None:
        t = self.infos[token]
        if t.kind == "note":
            s.chord_notes += 1
            _note_accidental(s, t)
        elif t.kind == "chord_end":
            s.chord_notes = -1
            s.pending = "chord"

    def _element(self, s: _State, token: int) -> None:
        """A note, rest or chord starts (its duration token may follow)."""
        t = self.infos[token]
        _commit_if_pending(s)
        s.prefixes = 0
        s.after_bar = False
        s.rhythm = s.rhythm.start()
        s.tie = None
        s.last_note = None
        if t.kind == "chord_start":
            s.chord_notes = 0
            return
        s.pending = t.kind
        if t.kind == "note":
            s.last_note = token
            _note_accidental(s, t)


def _swung_off_beat(c: _State) -> bool:
    """The element just written is one that abc2midi swings in a hornpipe (``SWUNG_NOTE``
    long, starting off that beat): no broken rhythm may follow it."""
    swung = SWUNG_NOTE.get(c.rhythm.meter) if c.dance == "hornpipe" else None
    if swung is None or c.rhythm.last_written != swung:
        return False
    beats = (c.pos - swung) / swung
    return beats.denominator == 1 and beats.numerator % 2 == 1


def _set_meter(s: _State, t) -> None:
    s.rhythm = s.rhythm.with_meter(t.meter)
    s.bar = t.value


def _tie(s: _State, note) -> None:
    """A tie to ``note`` written again; across a bar line only if no program can read the
    repeat as another pitch."""
    s.tie = note_id = s.last_note
    held = {letter for (letter, _octave), _ in s.bar_accidentals}
    s.tie_may_cross = note_id is not None and (
        note.accidental is not None or note.letter not in held
    )


def _note_accidental(s: _State, t) -> None:
    """An explicit accidental holds for its letter and octave until the bar line."""
    if t.accidental is not None:
        held = dict(s.bar_accidentals)
        held[(t.letter, t.octave)] = t.accidental
        s.bar_accidentals = tuple(held.items())


def _commit(s: _State, multiplier: Fraction) -> None:
    """The pending element ends: its duration is unit x multiplier x its factor."""
    s.rhythm, done = s.rhythm.commit(multiplier)
    s.pos += done.length
    s.pending = None


def _commit_if_pending(s: _State) -> None:
    if s.pending is not None:
        _commit(s, ONE)


def _close_bar(s: _State, token: str) -> None:
    length = s.pos
    _count_part(s, token, length)
    if length > 0:
        if s.section_new:
            s.section_first = length
            s.section_new = False
        s.split_from = length if length < s.bar and token in SECTION_CLOSE else None
        s.bars += 1
        s.section_bars += 1
        if s.ending:
            s.ending_bars += 1
    if token in SECTION_START:
        s.section_new = True
    s.pos = Fraction(0)
    s.rhythm = s.rhythm.bar()
    s.last_note = None
    s.bar_accidentals = ()
    s.after_bar = True
    s.last_bar = token
    if token == "|":
        return
    if token in SECTION_CLOSE:
        s.last_close = token
    s.section_bars = 0
    if token == "|:":
        s.repeat_open = True
        s.ending = 0
    elif token == ":|":  # after a first ending, the second must follow at once
        s.expect_ending2 = s.ending == 1
        s.ending1_bars = s.ending_bars
        s.repeat_open = False
        s.ending = 1 if s.expect_ending2 else 0
    else:
        s.repeat_open = False
        s.ending = 0


def _count_part(s: _State, token: str, length: Fraction) -> None:
    """A bar adds to its part's time; a section sign after music ends the part, except the
    ``:|`` of a first ending (the second ending finishes the part)."""
    if token == "|" or length == 0:
        s.part_time += length
    elif not (token == ":|" and s.ending == 1):
        s.part_time = Fraction(0)
        s.parts_done += 1


def _open_ending(s: _State, number: int) -> None:
    """``[1`` remembers where the section stood; ``[2`` starts again from there."""
    s.after_bar = False
    if number == 1:
        s.ending_from = _Section(
            s.section_new, s.section_first, s.split_from, s.section_bars, s.part_time
        )
    elif s.ending_from is not None:
        start = s.ending_from
        s.section_new, s.section_first = start.new, start.first
        s.split_from, s.section_bars = start.split_from, start.bars
        s.part_time = start.part_time
    s.ending = number
    s.ending_bars = 0
    s.expect_ending2 = False


def _commit_preview(s: _State) -> _State:
    if s.pending is None:
        return s
    c = _copy(s)
    _commit(c, ONE)
    return c


def _copy(s: _State) -> _State:
    return dataclasses.replace(s)
