"""What each ABC token means: the one place that reads token strings.

genseq's ABC level writes a tune as a flat list of tokens, folk-rnn style (see
``abc_lexer`` for how ABC text becomes tokens). The tokenizer, the constrained sampler, the
note interpreter and the statistics all need to know what a token *is* (a note, a duration, a
bar line...), so they ask ``info(token)`` here instead of parsing strings themselves.

Token forms (all produced by ``abc_lexer``; nothing else is ever in a vocabulary):

=================  =============================================================================
``R:jig``          rhythm (``header.TuneRhythm``), first in the header when the tune names one
``M:6/8``          meter; ``bar`` is its length in whole notes (6/8)
``K:Dmix``         key: tonic (``C``, ``F#``, ``Bb``...) and mode (maj min dor mix phr lyd loc)
``Q:120``          tempo band after the key: quarter notes per minute (``header.TEMPO_BANDS``)
``L:1/4``          unit note length (only when not normalised; absent means ``L:1/8``)
``^c'``            a note: accidental (``^^ ^ = _ __`` or none), letter, octave marks
``z``              a rest
``[`` ``]``        chord (several notes sounding together) open and close
``2`` ``/2`` ``3/2``  duration multiplier of the preceding note, rest or chord (absent: 1)
``-``              tie to the next note of the same pitch
``>`` ``<`` ``>>`` ``<<``  broken rhythm between two notes
``(3`` ``(3:2:3``  tuplet: p notes in the time of q, over the next r notes
``|`` ``||`` ``|]`` ``|:`` ``:|``  bar lines; ``[1`` ``[2``... first, second ending;
                   ``[1,2`` ``[1-3`` an ending for several passes (ABC 2.1 lists)
``"Am"``           chord symbol (kept only with ``--abc-chords``)
``!trill!``        decoration (kept only with ``--abc-decorations``)
``{g}`` ``{/ag}``  grace notes, one token per group (kept only with ``--abc-grace``)
=================  =============================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from genseq.music.header import RHYTHM_PREFIX, TuneRhythm

DEFAULT_UNIT = Fraction(1, 8)

MODES = ("maj", "min", "dor", "mix", "phr", "lyd", "loc")
# Sharps (+) or flats (-) of each mode's signature relative to the major key on the same tonic.
MODE_FIFTHS = {"maj": 0, "lyd": 1, "mix": -1, "dor": -2, "min": -3, "phr": -4, "loc": -5}
LETTERS = "CDEFGAB"
NATURAL_SEMITONE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
SHARP_ORDER = "FCGDAEB"
MAJOR_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F": -1}

BAR_TOKENS = ("|", "||", "|]", "|:", ":|")
BROKEN_FACTORS = {
    ">": (Fraction(3, 2), Fraction(1, 2)),
    "<": (Fraction(1, 2), Fraction(3, 2)),
    ">>": (Fraction(7, 4), Fraction(1, 4)),
    "<<": (Fraction(1, 4), Fraction(7, 4)),
}
ACCIDENTALS = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
# The most digits a number in a tune may have. Real tunes need two or three; longer numbers
# are damage, and Python refuses to read one of over 4,300 digits as an int (``ValueError``).
MAX_DIGITS = 9

_NOTE = re.compile(r"(\^\^|\^|=|__|_)?([A-Ga-g])([',]*)")
_DURATION = re.compile(r"(\d+)?(?:/(\d+))?")
_TUPLET = re.compile(r"\((\d+)(?::(\d*))?(?::(\d*))?")
_KEY = re.compile(r"K:([A-G][#b]?)(maj|min|dor|mix|phr|lyd|loc)")
_METER = re.compile(r"M:(\d+)/(\d+)")
_UNIT = re.compile(r"L:(\d+)/(\d+)")
_ENDING = re.compile(r"\[(\d[\d,\-]*)")
_TEMPO = re.compile(r"Q:([1-9]\d{0,2})")
RHYTHM_NAMES = frozenset(r.value for r in TuneRhythm)


@dataclass(frozen=True)
class TokenInfo:
    """The meaning of one token. Only the fields of its ``kind`` are set."""

    kind: str  # rhythm tempo meter key unit note rest chord_start chord_end duration tie
    #            broken tuplet bar ending chord_symbol decoration grace special unknown
    text: str
    value: Fraction | None = None  # duration multiplier; meter bar length; unit length
    letter: str | None = None  # note: upper-case letter
    octave: int | None = None  # note: scientific octave (C4 is middle C, written ``C``)
    accidental: int | None = None  # note: explicit alteration in semitones, None if unmarked
    tonic: str | None = None  # key
    mode: str | None = None  # key
    meter: tuple[int, int] | None = None  # meter
    tuplet: tuple[int, int | None, int] | None = None  # (p, q or None for the default, r)
    ending: int | None = None  # ending: its first pass
    passes: tuple[int, ...] = ()  # ending: every pass it is played on
    factors: tuple[Fraction, Fraction] | None = None  # broken rhythm: first, second note
    rhythm: str | None = None  # rhythm: its name (``slip-jig``)


def ending_passes(text: str) -> tuple[int, ...] | None:
    """``1`` -> (1,), ``1,2`` -> (1, 2), ``1-3,5`` -> (1, 2, 3, 5); None unless every pass
    is 1-9, in order, each once."""
    passes: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        if not short_number(low) or (high and not short_number(high)):
            return None
        first, last = int(low), int(high or low)
        if last > 9 and last >= first:  # a pass past 9 (checked here: the range may be huge)
            return None
        passes.extend(range(first, last + 1))
    ok = passes and all(1 <= p <= 9 for p in passes) and passes == sorted(set(passes))
    return tuple(passes) if ok else None


def short_number(text: str) -> bool:
    """``text`` is a number of at most ``MAX_DIGITS`` digits (decimal ones: what ``int`` reads)."""
    return text.isdecimal() and len(text) <= MAX_DIGITS


def note_token(letter: str, octave: int, accidental: int | None) -> str:
    """The canonical spelling of a note: ``C`` is middle C (octave 4), ``c`` the one above."""
    acc = "" if accidental is None else next(k for k, v in ACCIDENTALS.items() if v == accidental)
    if octave >= 5:
        return acc + letter.lower() + "'" * (octave - 5)
    return acc + letter.upper() + "," * (4 - octave)


def duration_token(multiplier: Fraction) -> str:
    """``2``, ``/2``, ``3/2``; the empty string for 1 (a note with no duration token)."""
    if multiplier == 1:
        return ""
    if multiplier.denominator == 1:
        return str(multiplier.numerator)
    if multiplier.numerator == 1:
        return f"/{multiplier.denominator}"
    return f"{multiplier.numerator}/{multiplier.denominator}"


def parse_duration(text: str) -> Fraction | None:
    """ABC duration suffix text -> multiplier (``/`` alone halves, ``//`` quarters)."""
    if text == "":
        return Fraction(1)
    if set(text) == {"/"}:
        return Fraction(1, 2 ** len(text))
    m = _DURATION.fullmatch(text)
    if not m or (m.group(1) is None and m.group(2) is None):
        if text.endswith("/") and short_number(text[:-1]):  # "3/" means 3/2
            return Fraction(int(text[:-1]), 2)
        return None
    if any(g is not None and not short_number(g) for g in m.groups()):
        return None
    num = int(m.group(1)) if m.group(1) else 1
    den = int(m.group(2)) if m.group(2) else 1
    if num == 0 or den == 0:
        return None
    return Fraction(num, den)


def key_signature(tonic: str, mode: str) -> dict[str, int]:
    """Letter -> alteration (+1 sharp, -1 flat) of the key signature of ``tonic`` ``mode``."""
    fifths = key_fifths(tonic, mode)
    if fifths >= 0:
        return dict.fromkeys(SHARP_ORDER[:fifths], 1)
    return dict.fromkeys(SHARP_ORDER[::-1][:-fifths], -1)


def key_fifths(tonic: str, mode: str) -> int:
    """Sharps (positive) or flats (negative) in the signature; can exceed 7 for odd keys."""
    fifths = MAJOR_FIFTHS[tonic[0]] + MODE_FIFTHS[mode]
    if tonic.endswith("#"):
        fifths += 7
    elif tonic.endswith("b"):
        fifths -= 7
    return fifths


def tonic_semitone(tonic: str) -> int:
    return (NATURAL_SEMITONE[tonic[0]] + (1 if tonic.endswith("#") else 0)) - (
        1 if tonic.endswith("b") else 0
    )


def default_tuplet_q(p: int, meter: tuple[int, int] | None) -> int:
    """ABC 2.1's default: 3 in the time of 2, 2 and 4 in the time of 3, others by meter."""
    if p in (2, 4, 8):
        return 3
    if p in (3, 6):
        return 2
    compound = meter is not None and meter[0] % 3 == 0 and meter[0] > 3
    return 3 if compound else 2


@lru_cache(maxsize=4096)
def info(token: str) -> TokenInfo:
    """What ``token`` means (cached: vocabularies are small)."""
    if token in ("<eos>", "<unk>"):
        return TokenInfo("special", token)
    if token in BAR_TOKENS:
        return TokenInfo("bar", token)
    if token == "z":
        return TokenInfo("rest", token)
    if token == "[":
        return TokenInfo("chord_start", token)
    if token == "]":
        return TokenInfo("chord_end", token)
    if token == "-":
        return TokenInfo("tie", token)
    if token in BROKEN_FACTORS:
        return TokenInfo("broken", token, factors=BROKEN_FACTORS[token])
    if len(token) >= 2 and token[0] == token[-1] == '"':
        return TokenInfo("chord_symbol", token)
    if len(token) >= 3 and token[0] == token[-1] == "!":
        return TokenInfo("decoration", token)
    if len(token) >= 3 and token[0] == "{" and token[-1] == "}":
        return TokenInfo("grace", token)
    if (m := _ENDING.fullmatch(token)) and (passes := ending_passes(m.group(1))):
        return TokenInfo("ending", token, ending=passes[0], passes=passes)
    if m := _METER.fullmatch(token):
        n, d = int(m.group(1)), int(m.group(2))
        if n > 0 and d > 0:
            return TokenInfo("meter", token, value=Fraction(n, d), meter=(n, d))
    if m := _UNIT.fullmatch(token):
        n, d = int(m.group(1)), int(m.group(2))
        if n > 0 and d > 0:
            return TokenInfo("unit", token, value=Fraction(n, d))
    if token.startswith(RHYTHM_PREFIX) and token[2:] in RHYTHM_NAMES:
        return TokenInfo("rhythm", token, rhythm=token[2:])
    if m := _TEMPO.fullmatch(token):
        return TokenInfo("tempo", token, value=Fraction(int(m.group(1))))
    if m := _KEY.fullmatch(token):
        return TokenInfo("key", token, tonic=m.group(1), mode=m.group(2))
    if m := _TUPLET.fullmatch(token):
        p = int(m.group(1))
        q = int(m.group(2)) if m.group(2) else None
        r = int(m.group(3)) if m.group(3) else p
        if p >= 2 and r >= 1 and (q is None or q >= 1):
            return TokenInfo("tuplet", token, tuplet=(p, q, r))
    if m := _NOTE.fullmatch(token):
        acc, letter, marks = m.groups()
        octave = (5 if letter.islower() else 4) + marks.count("'") - marks.count(",")
        return TokenInfo(
            "note",
            token,
            letter=letter.upper(),
            octave=octave,
            accidental=None if acc is None else ACCIDENTALS[acc],
        )
    if token and (token[0].isdigit() or token[0] == "/"):
        value = parse_duration(token)
        if value is not None:
            return TokenInfo("duration", token, value=value)
    return TokenInfo("unknown", token)


# Semitones above the tonic of the third and fifth of each mode's tonic triad.
TRIADS = {
    "maj": (4, 7),
    "lyd": (4, 7),
    "mix": (4, 7),
    "min": (3, 7),
    "dor": (3, 7),
    "phr": (3, 7),
    "loc": (3, 6),
}


def degree(letter: str, alteration: int | None, tonic: str, mode: str) -> str:
    """``tonic``, ``triad`` (its third or fifth) or ``other``: a note of ``letter`` with an
    alteration held in its bar (None: the key signature's) against ``tonic`` ``mode``."""
    if alteration is None:
        alteration = key_signature(tonic, mode).get(letter, 0)
    interval = (NATURAL_SEMITONE[letter] + alteration - tonic_semitone(tonic)) % 12
    if interval == 0:
        return "tonic"
    return "triad" if interval in TRIADS[mode] else "other"


def midi_pitch(letter: str, octave: int, alteration: int) -> int:
    """MIDI number of a spelled pitch: C4 (middle C) is 60."""
    return 12 * (octave + 1) + NATURAL_SEMITONE[letter] + alteration
