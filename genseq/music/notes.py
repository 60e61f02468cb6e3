"""ABC tokens -> timed MIDI notes: the one interpreter that MIDI, audio, piano rolls and the
music statistics share, so they all agree on what a tune sounds like.

Reading follows ABC 2.1 as far as the token forms in ``abc_vocab`` go: the key signature comes
from the current ``K:`` token; an explicit accidental holds for that letter *and octave* until
the next bar token (``=`` naturalises); a note lasts unit x multiplier (unit ``L:``, default
1/8); a chord ``[ A c e ] 2`` sounds together for the duration after ``]``; ``-`` ties a note
(or chord) to the next note of the same pitch, which then only lengthens it; ``>`` ``<`` ``>>``
``<<`` scale the notes either side; ``(p:q:r`` scales the next r notes, rests or chords by q/p
(all this arithmetic is ``rhythm``'s, shared with the sampler's grammar and the bar checker).
A note tied across a bar line keeps its accidental, as abc2midi reads it. What the reference
programs would flag in a tune that still plays is listed in ``TuneNotes.problems``.
Chord symbols, decorations and grace notes make no sound and are skipped. Anything that cannot
be read as a tune (a duration with nothing before it, an unclosed chord, a tuplet or tie that
runs off the end, a stray ending, an unknown or special token, a tune without notes...) raises
``AbcError`` with a short, fixed reason (no token text in it, so that the statistics, which
count unreadable tunes by reason, get few distinct reasons): unconstrained samples hit these.

Repeat expansion (the one documented, tested rule)
-------------------------------------------------
The tune is first read into a flat score of events (notes, rests, chords) and markers (bar
tokens and endings); a pointer then plays the score:

* ``|:`` marks where a repeat starts.
* ``:|`` sends playback back to the most recent ``|:``; if there is none since the last section
  end, to the start of the tune or to just after the last ``||``, ``|]`` or ``:|``, whichever is
  latest. Each ``:|`` is taken once, so the section plays twice; when it is reached again
  playback continues, and a later ``:|`` repeats from just after it.
* ``||`` and ``|]`` are section ends: a later ``:|`` with no ``|:`` repeats from just after them.
* Endings: on the first pass every ending is played as written, so ``[1`` plays up to its
  ``:|``. On pass n (n >= 2, i.e. after a ``:|`` sent playback back) an ending not for pass n
  (``[1,2`` is for passes 1 and 2) jumps to the next ending for pass n in the same section
  (before any ``|:``, ``||`` or ``|]``), so ``|: A | B | [1 c :| [2 d ||`` plays A B c A B d;
  ``[2`` sections play once. If the section has no such ending, playback resumes just after
  the ``:|`` that sent it back (or, when that ``:|`` is already behind, plays the ending as
  written). A ``:|`` already taken sends playback back again while the section has an ending
  for the next pass: ``|: A | [1,2 b :| [3 c ||`` plays A b A b A c.
* The pass count goes back to 1 at ``|:``, ``||``, ``|]`` and at a ``:|`` already taken
  that does not repeat.

Every jump either goes forward or adds a pass (at most 9), so playback always ends. With
``expand_repeats=False`` the score plays straight through, every ending once.

Pitches and accidentals are resolved in written order (a repeat replays what was written), and
ties join notes in *played* order. ``length`` is the end of the last event played; trailing
``M:``/``K:``/``L:`` tokens add nothing. A final ``<eos>`` is accepted (samples end with it);
anywhere else it, and ``<unk>``, make the tune unreadable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from genseq.music.abc_lexer import AbcError
from genseq.music.abc_vocab import TokenInfo, info, key_signature, midi_pitch
from genseq.music.rhythm import Rhythm

SECTION_ENDS = ("||", "|]")
IGNORED_KINDS = ("chord_symbol", "decoration", "grace", "rhythm", "tempo")  # not heard here


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI number
    start: Fraction  # in whole notes from the start of the (repeat-expanded) tune
    duration: Fraction  # in whole notes


@dataclass
class TuneNotes:
    notes: list[Note]  # sorted by start, then pitch
    meter: tuple[int, int] | None  # the first meter
    key: tuple[str, str] | None  # the first (tonic, mode)
    length: Fraction  # total length in whole notes (end of the last bar played)
    # Times (whole notes) of the bar lines crossed while playing, after 0 and before ``length``:
    # the piano roll draws them, since pickups and meter changes defeat arithmetic on the meter.
    bar_lines: tuple[Fraction, ...] = ()
    # What the reference programs (abc2midi, abcm2ps) would flag though the tune plays: the
    # rhythm rules of ``rhythm``, ties between different pitches, endings outside a repeat,
    # ``|]`` before the end. One entry per occurrence.
    problems: tuple[str, ...] = ()


@dataclass
class _Event:
    """A note, chord or rest as written: mutable while its duration tokens are still read."""

    pitches: tuple[int, ...]  # empty for a rest
    duration: Fraction
    tied: frozenset[int] = frozenset()  # pitches tied to the next event played


@dataclass(frozen=True)
class _Marker:
    kind: str  # a bar token, or "ending"
    ending: int | None = None  # an ending's first pass
    passes: tuple[int, ...] = ()  # ... and all its passes ([1,2)


_Item = _Event | _Marker


@dataclass
class _Structure:
    """Repeats and section ends as the reference programs check them (``problems``)."""

    repeat_open: bool = False
    last_close: str | None = None  # the last :| || or |]
    final: bool = False  # a |] has been read

    def bar(self, text: str) -> str | None:
        if text == "|:":
            self.repeat_open = True
        elif text in (":|", "||", "|]"):
            self.repeat_open, self.last_close = False, text
            self.final = self.final or text == "|]"
        return None

    def ending(self, number: int) -> str | None:
        """A first ending needs a repeat to end: its own |:, or the tune's start."""
        if number == 1 and not self.repeat_open and self.last_close is not None:
            return "first ending outside a repeat"
        return None

    def event(self) -> str | None:
        if self.final:
            self.final = False  # said once
            return "music after |]"
        return None


def tune_notes(tokens: Sequence[str], expand_repeats: bool = True) -> TuneNotes:
    """The notes a token sequence plays; ``AbcError`` if it is not a readable tune."""
    reader = _Reader()
    reader.read(tokens)
    played = _play(reader.items) if expand_repeats else iter(reader.items)
    notes, length, bar_lines = _sound(played)
    problems = tuple(reader.problems)
    return TuneNotes(notes, reader.first_meter, reader.first_key, length, bar_lines, problems)


@dataclass
class _Reader:
    """Reads tokens into a score of events and markers, checking they make a tune."""

    items: list[_Item] = field(default_factory=list)
    first_meter: tuple[int, int] | None = None
    first_key: tuple[str, str] | None = None
    rhythm: Rhythm = Rhythm()
    signature: dict[str, int] = field(default_factory=dict)
    bar_accidentals: dict[tuple[str, int], int] = field(default_factory=dict)
    chord: list[int] | None = None  # pitches of the open chord
    chord_ties: set[int] = field(default_factory=set)
    spelling: dict[tuple[str, int], int] = field(default_factory=dict)  # the last event's notes
    tied_spelling: dict[tuple[str, int], int] = field(default_factory=dict)  # ... when tied
    last: _Event | None = None  # the event just read: a duration, tie or ``>`` may follow it
    last_has_duration: bool = False
    tie_open: bool = False  # a tie still waiting for the next note or chord
    after_bar: bool = False
    has_notes: bool = False
    problems: list[str] = field(default_factory=list)
    structure: _Structure = field(default_factory=lambda: _Structure())

    def read(self, tokens: Sequence[str]) -> None:
        for i, token in enumerate(tokens):
            meaning = info(token)
            if meaning.kind in IGNORED_KINDS:
                continue
            if meaning.kind == "special" and token == "<eos>" and i == len(tokens) - 1:
                break
            was_after_bar, self.after_bar = self.after_bar, False
            self._dispatch(meaning, was_after_bar)
        self._finish()

    def _dispatch(self, meaning: TokenInfo, after_bar: bool) -> None:
        kind = meaning.kind
        if kind == "duration":
            return self._duration(meaning.value)
        self._commit()
        if kind == "tie":
            return self._tie()
        if kind == "broken":
            return self._broken(meaning.factors)
        self.last = None  # only a duration or a tie may follow an event directly
        if kind == "ending":
            if not after_bar:
                raise AbcError("ending not right after a bar line")
            self.items.append(_Marker("ending", meaning.ending, meaning.passes))
            self._flag(self.structure.ending(meaning.ending))
        elif kind in ("meter", "unit", "key"):
            self._field(meaning)
        elif kind == "note":
            self._note(meaning)
        elif kind == "rest":
            self._outside_chord("rest")
            self._event(())
        elif kind == "chord_start":
            self._outside_chord("'['")
            self.chord, self.chord_ties, self.spelling = [], set(), {}
        elif kind == "chord_end":
            self._chord_end()
        elif kind == "tuplet":
            self._tuplet(meaning.tuplet)
        elif kind == "bar":
            self._bar(meaning.text)
        elif kind == "special":
            raise AbcError(f"{meaning.text} inside the tune")
        else:
            raise AbcError("unknown token")

    def _outside_chord(self, what: str) -> None:
        if self.chord is not None:
            raise AbcError(f"{what} inside a chord")

    def _field(self, meaning: TokenInfo) -> None:
        """``M:``, ``L:``, ``K:`` at the start or as a change mid-tune."""
        self._outside_chord("field")
        if meaning.kind == "meter":
            self.rhythm = self.rhythm.with_meter(meaning.meter)
            self.first_meter = self.first_meter or meaning.meter
        elif meaning.kind == "unit":
            self.rhythm = self.rhythm.with_unit(meaning.value)
        else:
            self.signature = key_signature(meaning.tonic, meaning.mode)
            self.first_key = self.first_key or (meaning.tonic, meaning.mode)

    def _note(self, meaning: TokenInfo) -> None:
        pitch = self._pitch(meaning.letter, meaning.octave, meaning.accidental)
        if self.tie_open and meaning.accidental is None:
            pitch = self._tied_pitch(meaning.letter, meaning.octave, pitch)
        if self.chord is None:
            self.spelling = {}
        self.spelling[meaning.letter, meaning.octave] = pitch
        if self.chord is not None:
            self.chord.append(pitch)
        else:
            self._event((pitch,))

    def _tied_pitch(self, letter: str, octave: int, pitch: int) -> int:
        """A note tied across a bar line keeps the accidental it had (``^F-|F`` holds F
        sharp, as abc2midi and abcm2ps read it)."""
        return self.tied_spelling.get((letter, octave), pitch)

    def _pitch(self, letter: str, octave: int, accidental: int | None) -> int:
        """Key signature, overridden by this bar's accidentals on the same letter and octave."""
        if accidental is not None:
            self.bar_accidentals[letter, octave] = accidental
        alteration = self.bar_accidentals.get((letter, octave), self.signature.get(letter, 0))
        pitch = midi_pitch(letter, octave, alteration)
        if not 0 <= pitch <= 127:
            raise AbcError("pitch outside the MIDI range")
        return pitch

    def _chord_end(self) -> None:
        if self.chord is None:
            raise AbcError("']' without '['")
        if not self.chord:
            raise AbcError("empty chord")
        pitches = tuple(sorted(set(self.chord)))
        ties = self.chord_ties
        self.chord = None
        self._event(pitches)
        if ties:  # ``[ A - c ]`` is not a token form, but a tie inside a chord keeps its note
            self.last.tied = frozenset(ties)
            self.tie_open = True

    def _event(self, pitches: tuple[int, ...]) -> None:
        """A note, rest or chord: its length is known once its duration token (or the lack of
        one) is read (``rhythm``)."""
        self._commit()
        self._flag(self.structure.event())
        if self.tie_open and pitches and self.items:
            tied = next((x for x in reversed(self.items) if isinstance(x, _Event)), None)
            if tied is not None and not tied.tied <= set(pitches):
                self.problems.append("tie between different pitches")
        self.rhythm = self.rhythm.start()
        event = _Event(pitches, self.rhythm.length(Fraction(1)))
        self.items.append(event)
        self.last, self.last_has_duration = event, False
        if pitches:
            self.has_notes = True
            self.tie_open = False

    def _duration(self, value: Fraction) -> None:
        if self.last is None or self.last_has_duration or self.chord is not None:
            raise AbcError("duration with no note, rest or chord before it")
        self._commit(value)

    def _commit(self, multiplier: Fraction = Fraction(1)) -> None:
        """The pending event's length is now known: ``multiplier`` (1 with no duration)."""
        if not self.rhythm.pending:
            return
        self.rhythm, done = self.rhythm.commit(multiplier)
        self.last.duration = done.length
        self.last_has_duration = True
        self._flag(done.problem)

    def _flag(self, problem: str | None) -> None:
        if problem is not None:
            self.problems.append(problem)

    def _tie(self) -> None:
        if self.chord is not None and self.chord:
            self.chord_ties.add(self.chord[-1])
            return
        if self.last is None or not self.last.pitches:
            raise AbcError("tie with no note or chord before it")
        self.last.tied = frozenset(self.last.pitches)
        self.tied_spelling = dict(self.spelling)
        self.last, self.tie_open = None, True

    def _broken(self, factors: tuple[Fraction, Fraction]) -> None:
        """``A > B``: the first factor now, the second when the next event is read."""
        self._outside_chord("broken rhythm")
        if self.last is None:
            raise AbcError("broken rhythm with no note before it")
        self.rhythm, extra, problem = self.rhythm.broken(*factors)
        self.last.duration += extra
        self._flag(problem)
        self.last = None

    def _tuplet(self, tuplet: tuple[int, int | None, int]) -> None:
        self._outside_chord("tuplet")
        if self.rhythm.tuplet_left:
            raise AbcError("tuplet inside a tuplet")
        self.rhythm = self.rhythm.tuplet(*tuplet)

    def _bar(self, text: str) -> None:
        self._outside_chord("bar line")
        if self.rhythm.broken_factor != 1:
            raise AbcError("broken rhythm across a bar line")
        self.rhythm = self.rhythm.bar()
        self._flag(self.structure.bar(text))
        self.items.append(_Marker(text))
        self.bar_accidentals = {}
        self.after_bar = True

    def _finish(self) -> None:
        if self.chord is not None:
            raise AbcError("unclosed chord at the end")
        self._commit()
        if self.rhythm.tuplet_left:
            raise AbcError("tuplet runs past the end")
        if self.rhythm.broken_factor != 1:
            raise AbcError("broken rhythm at the end")
        if self.tie_open:
            raise AbcError("tie at the end")
        if not self.has_notes:
            raise AbcError("no notes")


def _play(items: list[_Item]) -> Iterator[_Item]:
    """Events and markers in playing order under the repeat rule in the module docstring."""
    state = _Playback()
    repeats = sum(isinstance(x, _Marker) and x.kind == ":|" for x in items)
    limit = len(items) * (2 + 9 * repeats)  # an ending list may repeat a section 9 times
    i = steps = 0
    while i < len(items):
        steps += 1
        if steps > limit:  # cannot happen (every jump is forward or adds a pass, at most 9)
            raise AbcError("repeats do not terminate")
        item = items[i]
        if isinstance(item, _Marker):
            target = state.jump(items, i)
            if target is not None:
                if item.kind == ":|":
                    yield item  # the bar line is crossed; an ending's marker is skipped
                i = target
                continue
        yield item
        i += 1


@dataclass
class _Playback:
    """Where ``:|`` goes back to, which ``:|`` are used up, and which pass this is."""

    repeat_start: int = 0
    back_from: int = -1  # the ``:|`` that last sent playback back
    passes: int = 1
    taken: set[int] = field(default_factory=set)

    def jump(self, items: list[_Item], i: int) -> int | None:
        """The index playback jumps to at marker ``i``, or None to play on through it."""
        marker = items[i]
        # A :| repeats once, and again while its section has an ending for the next pass.
        if marker.kind == ":|" and (
            i not in self.taken
            or _ending_target(items, self.repeat_start - 1, self.passes + 1) is not None
        ):
            self.taken.add(i)
            self.back_from, self.passes = i, self.passes + 1
            return self.repeat_start
        if marker.kind == "ending" and self.passes > 1 and self.passes not in marker.passes:
            target = _ending_target(items, i, self.passes)
            if target is not None:
                return target
            if self.back_from > i:
                self._section_from(self.back_from + 1)
                return self.back_from + 1
        if marker.kind in ("|:", ":|", *SECTION_ENDS):
            self._section_from(i + 1)
        return None

    def _section_from(self, i: int) -> None:
        self.repeat_start, self.passes = i, 1


def _ending_target(items: list[_Item], i: int, passes: int) -> int | None:
    """This pass's ending later in the same section (before ``|:``, ``||`` or ``|]``)."""
    for j in range(i + 1, len(items)):
        item = items[j]
        if isinstance(item, _Event):
            continue
        if item.kind == "ending" and passes in item.passes:
            return j
        if item.kind in ("|:", *SECTION_ENDS):
            return None
    return None


def _sound(played: Iterator[_Item]) -> tuple[list[Note], Fraction, tuple[Fraction, ...]]:
    """Lay events end to end, merging tied notes; returns notes, length and bar-line times."""
    spans: list[list] = []  # [pitch, start, duration], mutable while ties extend them
    open_ties: dict[int, int] = {}  # pitch -> index in spans of a note tied into the next event
    bar_lines: list[Fraction] = []
    time = Fraction(0)
    for item in played:
        if isinstance(item, _Marker):
            if item.kind != "ending" and time > 0 and (not bar_lines or bar_lines[-1] != time):
                bar_lines.append(time)
            continue
        next_ties = {}
        for pitch in item.pitches:
            index = open_ties.get(pitch)
            if index is None:
                index = len(spans)
                spans.append([pitch, time, Fraction(0)])
            spans[index][2] += item.duration
            if pitch in item.tied:
                next_ties[pitch] = index
        open_ties = next_ties
        time += item.duration
    notes = sorted((Note(p, s, d) for p, s, d in spans), key=lambda n: (n.start, n.pitch))
    return notes, time, tuple(t for t in bar_lines if t < time)
