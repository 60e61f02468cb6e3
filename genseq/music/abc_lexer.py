"""ABC text -> folk-rnn style tokens: tunebooks split into tunes, tunes into symbols.

This is the tokenizer's inner loop, so it is a hand-written scanner over the tune text (about
a millisecond per tune) rather than music21 (50-100 ms per tune); music21 is used to check
the results, in the tests and in `genseq music stats`.

What it keeps is what a melody model should learn: rhythm (``R:``), meter, key and tempo
(``Q:``) tokens from the header (see ``header``), notes (accidental,
letter and octave in one token), durations, rests, bar lines, repeats and endings, tuplets,
broken rhythm, ties and chords. Slurs, beaming spaces, line breaks, annotations, lyrics and
other header fields are dropped; chord symbols, decorations and grace notes are kept only when
asked. Durations are rewritten in units of an eighth note (``L:1/8``) unless told otherwise,
so ``L:1/16`` and ``L:1/4`` tunes share one vocabulary. A tune that cannot be read raises
``AbcError`` with a short reason, which the tokenize summary counts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from genseq.music.abc_vocab import (
    ACCIDENTALS,
    DEFAULT_UNIT,
    LETTERS,
    NATURAL_SEMITONE,
    default_tuplet_q,
    duration_token,
    ending_passes,
    info,
    key_fifths,
    note_token,
    parse_duration,
    short_number,
    tonic_semitone,
)
from genseq.music.header import normalise_rhythm, rhythm_token, tempo_qpm, tempo_token


class AbcError(ValueError):
    """A tune that cannot be read; the message is the reason shown in summaries."""


SHOWN_CHARS = 60  # the most of a tune's text a reason quotes (real tunes' reasons fit)


def _shown(text: str) -> str:
    """``text`` clipped, so that a reason stays one short line however long the damage."""
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


@dataclass(frozen=True)
class RawTune:
    number: str | None  # the X: field
    title: str  # the first T: field, or ""
    text: str  # the tune's text from its X: line to the end of its body
    line: int  # 1-based line number of the X: line in its file


@dataclass(frozen=True)
class LexOptions:
    chords: bool = False
    decorations: bool = False
    grace: bool = False
    normalise_unit: bool = True
    transpose: str | None = None  # a tonic such as "C": every tune moves to it, mode kept
    rhythm: bool = True  # an R: field in the header becomes a token (``R:jig``)
    tempo: bool = True  # a Q: field in the header becomes a tempo band token (``Q:120``)


# ---------------------------------------------------------------------------------------------
# Tunebooks

_X_LINE = re.compile(r"X:\s*(\S*)")
_FIELD = re.compile(r"([A-Za-z+]):(.*)")
_BODY_FIELD = re.compile(r"([H-Zh-wyz+]):(.*)")  # A-G and a-g begin notes (``G:|``)
_HTML_TAG = re.compile(r"</?(?:br|p|div|span|pre|html|body|b|i)\s*/?>", re.IGNORECASE)


def iter_tunes(chunks: Iterable[str]) -> Iterator[RawTune]:
    """Tunes of a tunebook read as line-aligned chunks (bounded memory).

    A tune starts at an ``X:`` line and ends before the next one, or at the first blank line
    after its body began (ABC 2.1); text outside tunes (file headers, notes) is skipped.
    """
    lines: list[str] = []
    number: str | None = None
    start = 0
    in_body = False
    line_no = 0

    def finish() -> RawTune | None:
        if not lines:
            return None
        title = next((ln[2:].strip() for ln in lines if ln.startswith("T:")), "")
        return RawTune(number, title, "\n".join(lines) + "\n", start)

    for chunk in chunks:
        for raw in chunk.splitlines():
            line_no += 1
            line = raw.rstrip()
            m = _X_LINE.match(line)
            if m:
                tune = finish()
                if tune:
                    yield tune
                lines, number, start, in_body = [line], m.group(1) or None, line_no, False
            elif lines:
                if not line.strip():
                    if in_body:
                        tune = finish()
                        if tune:
                            yield tune
                        lines = []
                    continue
                lines.append(line)
                if line.startswith("K:"):
                    in_body = True
    tune = finish()
    if tune:
        yield tune


def split_tunebook(text: str) -> list[RawTune]:
    return list(iter_tunes([text]))


def tune_title(text: str) -> str:
    return next(
        (ln[2:].strip() for ln in text.splitlines() if ln.startswith("T:")),
        "",
    )


# ---------------------------------------------------------------------------------------------
# Header fields

_MODE_NAMES = {
    "": "maj",
    "m": "min",
    "maj": "maj",
    "ion": "maj",
    "min": "min",
    "aeo": "min",
    "dor": "dor",
    "mix": "mix",
    "phr": "phr",
    "lyd": "lyd",
    "loc": "loc",
}
_KEY_VALUE = re.compile(r"([A-Ga-g])([#b]?)\s*([A-Za-z]*)(.*)")
_EXPLICIT_ACCIDENTAL = re.compile(r"(?:^|\s)[_^=][A-Ga-g]")


def parse_key(value: str) -> tuple[str, str]:
    """``K:`` field value -> (tonic, mode); ``K:none`` and an empty key read as C major."""
    value = value.split("%")[0].strip()
    if value.lower() in ("", "none"):
        return "C", "maj"
    if value.lower().startswith("hp"):
        raise AbcError("highland pipes key (K:HP) is not supported")
    m = _KEY_VALUE.match(value)
    if not m:
        raise AbcError(f"unreadable key K:{_shown(value)}")
    letter, acc, word, rest = m.groups()
    word = word.lower()
    if word.startswith(("clef", "treble", "bass", "alto", "tenor", "transpose", "middle")):
        rest, word = word + rest, ""
    mode = _MODE_NAMES.get(word[:3] if len(word) >= 3 else word)
    if mode is None:
        raise AbcError(f"unknown mode in K:{_shown(value)}")
    if _EXPLICIT_ACCIDENTAL.search(rest):
        raise AbcError(f"modified key signature K:{_shown(value)} is not supported")
    return letter.upper() + acc, mode


def parse_meter(value: str) -> tuple[int, int]:
    value = value.split("%")[0].strip()
    if value == "C":
        return 4, 4
    if value == "C|":
        return 2, 2
    m = re.fullmatch(r"\(?([\d+]+)\)?\s*/\s*(\d+)", value)
    if not m:
        raise AbcError(f"free or unreadable meter M:{_shown(value)}")
    parts = [p for p in m.group(1).split("+") if p]
    if not all(map(short_number, [*parts, m.group(2)])):
        raise AbcError(f"unreadable meter M:{_shown(value)}")
    numerator = sum(int(p) for p in parts)
    denominator = int(m.group(2))
    if numerator <= 0 or denominator <= 0:
        raise AbcError(f"unreadable meter M:{_shown(value)}")
    return numerator, denominator


def parse_unit(value: str) -> Fraction:
    m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", value.split("%")[0].strip())
    if not m or not all(map(short_number, m.groups())) or 0 in map(int, m.groups()):
        raise AbcError(f"unreadable unit length L:{_shown(value.strip())}")
    return Fraction(int(m.group(1)), int(m.group(2)))


def key_token(tonic: str, mode: str) -> str:
    return f"K:{tonic}{mode}"


# ---------------------------------------------------------------------------------------------
# The body scanner

_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([,']*)([\d/]*)")
_REST = re.compile(r"[zx]([\d/]*)")
_TUPLET = re.compile(r"\((\d+)(?::(\d*))?(?::(\d*))?")
_BAR = re.compile(r"(:*)(\[\||\|\]|\|\||\|)(:*)|(:{2,})")
_INLINE_FIELD = re.compile(r"\[([A-Za-z]):([^\]]*)\]")
_DURATION_TEXT = re.compile(r"[\d/]*")
_ENDING_NUMBERS = re.compile(r"(\d+)([,\-]\d+)*")
_SHORT_DECORATIONS = {
    "~": "!roll!",
    ".": "!staccato!",
    "H": "!fermata!",
    "L": "!accent!",
    "M": "!lowermordent!",
    "O": "!coda!",
    "P": "!uppermordent!",
    "S": "!segno!",
    "T": "!trill!",
    "u": "!upbow!",
    "v": "!downbow!",
    "J": "!slide!",
    "R": "!roll!",
}
_IGNORED = set(" \t\\`$y*")
_USER_SYMBOLS = set("HIJKLMNOPQRSTUVWhijklmnopqrstuvw") - set(_SHORT_DECORATIONS)
_NOTE_LIKE = ("note", "rest", "chord_end", "duration")


class _Scanner:
    """Scans one tune body, line by line, appending tokens (keeps meter and unit state)."""

    def __init__(self, options: LexOptions, meter: tuple[int, int], unit: Fraction) -> None:
        self.options = options
        self.meter = meter
        self.unit = unit
        self.tokens: list[str] = []

    # -- emitting -----------------------------------------------------------------------------
    def duration(self, text: str) -> None:
        value = parse_duration(text)
        if value is None:
            raise AbcError(f"unreadable duration {_shown(text)!r}")
        if self.options.normalise_unit:
            value = value * self.unit / DEFAULT_UNIT
        token = duration_token(value)
        if token:
            self.tokens.append(token)

    def last_kind(self) -> str | None:
        return info(self.tokens[-1]).kind if self.tokens else None

    def field(self, name: str, value: str) -> None:
        """A header field inside the body (own line or inline ``[M:3/4]``)."""
        if name == "M":
            self.meter = parse_meter(value)
            self.tokens.append(f"M:{self.meter[0]}/{self.meter[1]}")
        elif name == "L":
            self.unit = parse_unit(value)
            if not self.options.normalise_unit:
                self.tokens.append(f"L:{self.unit.numerator}/{self.unit.denominator}")
        elif name == "K":
            self.tokens.append(key_token(*parse_key(value)))
        elif name == "V":
            raise AbcError("several voices (V:) are not supported")
        # Every other field (P: parts, w: lyrics, Q: tempo, T:, N:, R:, I:...) is dropped.

    # -- scanning -----------------------------------------------------------------------------
    def body(self, lines: list[str]) -> None:
        """Body lines: field lines (``K:G``, ``P:B``, ``w:``) and music lines."""
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("%"):
                continue
            m = _BODY_FIELD.match(line)
            if m:
                self.field(m.group(1), m.group(2))
            else:
                self.line(line)

    def line(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c in _IGNORED:
                i += 1
            elif c == "%":
                return
            elif c == '"':
                i = self._quoted(text, i)
            elif c in "!+":
                i = self._long_decoration(text, i)
            elif c in _SHORT_DECORATIONS and not (c == "." and text[i + 1 : i + 2] == "|"):
                if self.options.decorations:
                    self.tokens.append(_SHORT_DECORATIONS[c])
                i += 1
            elif c == "{":
                i = self._grace(text, i)
            elif c == "[":
                i = self._bracket(text, i)
            elif c in "|:":
                i = self._bar(text, i)
            elif c == "(":
                i = self._paren(text, i)
            elif c == ")":
                i += 1
            elif c == "-":
                if self.last_kind() in _NOTE_LIKE:
                    self.tokens.append("-")
                i += 1
            elif c in "<>":
                j = i
                while j < n and text[j] == c:
                    j += 1
                if j - i > 2:
                    raise AbcError(f"unsupported broken rhythm {_shown(text[i:j])!r}")
                self.tokens.append(text[i:j])
                i = j
            elif c in "zx":
                m = _REST.match(text, i)
                self.tokens.append("z")
                self.duration(m.group(1))
                i = m.end()
            elif c.isdecimal() and self.last_kind() == "bar":  # "|\n2" is an ending too
                i = self._ending(text, i)
            elif c in "ZX":
                raise AbcError("multi-bar rests (Z) are not supported")
            elif c == "&":
                raise AbcError("voice overlay (&) is not supported")
            elif c in _USER_SYMBOLS:  # H-W and h-w: user-defined symbols, unknown here
                i += 1
            else:
                m = _NOTE.match(text, i)
                if not m:
                    if c in "^_=":
                        raise AbcError(f"accidental {c!r} with no note after it")
                    raise AbcError(f"unknown symbol {c!r}")
                self.tokens.append(_note(m))
                self.duration(m.group(4))
                i = m.end()

    def _quoted(self, text: str, i: int) -> int:
        end = text.find('"', i + 1)
        if end < 0:
            raise AbcError("unclosed quote")
        content = text[i + 1 : end]
        if self.options.chords and content and content[0] not in "^_<>@":
            self.tokens.append(f'"{content.strip()}"')
        return end + 1

    def _long_decoration(self, text: str, i: int) -> int:
        end = text.find(text[i], i + 1)
        if end < 0:
            if text[i] == "!":  # an old-style line break
                return i + 1
            raise AbcError(f"unclosed decoration {_shown(text[i:])!r}")
        name = text[i + 1 : end].strip()
        if self.options.decorations and name:
            self.tokens.append(f"!{name}!")
        return end + 1

    def _grace(self, text: str, i: int) -> int:
        end = text.find("}", i)
        if end < 0:
            raise AbcError("unclosed grace notes")
        inner = text[i + 1 : end]
        if self.options.grace:
            slash = "/" if inner.startswith("/") else ""
            notes = []
            for m in _NOTE.finditer(inner):
                notes.append(_note(m) + (m.group(4) or ""))
            if notes:
                self.tokens.append("{" + slash + "".join(notes) + "}")
        return end + 1

    def _bracket(self, text: str, i: int) -> int:
        nxt = text[i + 1 : i + 2]
        if nxt == "|":
            return self._bar(text, i)
        if nxt.isdecimal():
            return self._ending(text, i + 1)
        m = _INLINE_FIELD.match(text, i)
        if m:
            self.field(m.group(1), m.group(2))
            return m.end()
        return self._chord(text, i)

    def _chord(self, text: str, i: int) -> int:
        end = text.find("]", i)
        if end < 0:
            raise AbcError("unclosed chord")
        notes: list[str] = []
        first: str | None = None
        j = i + 1
        while j < end:
            c = text[j]
            if c in " -)(.~" or c in '!+"':
                if c in '!+"':
                    close = text.find(c, j + 1)
                    j = end if close < 0 else close + 1
                else:
                    j += 1
                continue
            m = _NOTE.match(text, j)
            if not m or m.end() > end:
                raise AbcError(f"unsupported chord content {_shown(text[i : end + 1])!r}")
            token = _note(m)
            if token not in notes:
                notes.append(token)
            if first is None:
                first = m.group(4)
            j = m.end()
        m = _DURATION_TEXT.match(text, end + 1)
        outer = parse_duration(m.group(0))
        inner = parse_duration(first or "")
        if outer is None or inner is None:
            raise AbcError("unreadable chord duration")
        if not notes:
            raise AbcError("empty chord")
        total = outer * inner
        if len(notes) == 1:
            self.tokens.append(notes[0])
        else:
            self.tokens.extend(["[", *notes, "]"])
        self.duration(duration_token(total) if total != 1 else "")
        return m.end()

    def _bar(self, text: str, i: int) -> int:
        m = _BAR.match(text, i)
        if not m or m.end() == i:
            if text[i] == ":" and self.tokens and self.tokens[-1] == "|":
                self.tokens[-1] = "|:"  # "|\n:" is a start repeat split by a line break
                return i + 1
            raise AbcError(f"unknown symbol {text[i]!r}")
        if m.group(4):  # "::" with no bar line: end one repeat, start the next
            self.tokens.extend([":|", "|:"])
        else:
            left, bar, right = m.group(1), m.group(2), m.group(3)
            if left:
                self.tokens.append(":|")
                if right:
                    self.tokens.append("|:")
            elif right:
                self.tokens.append("|:")
            else:
                self.tokens.append({"[|": "||", "||": "||", "|]": "|]", "|": "|"}[bar])
        j = m.end()
        if text[j : j + 1] == "]":  # "[|]": an invisible bar line
            j += 1
        if j < len(text) and text[j].isdecimal():
            return self._ending(text, j)
        return j

    def _ending(self, text: str, j: int) -> int:
        """``[1``, or an ABC 2.1 list of passes such as ``[1,2`` or ``[1-3`` (one token)."""
        m = _ENDING_NUMBERS.match(text, j)
        passes = ending_passes(m.group(0))
        if passes is None:
            raise AbcError(f"unsupported ending {_shown(m.group(0))}")
        if self.last_kind() != "bar":
            self.tokens.append("|")
        self.tokens.append("[" + m.group(0))
        return m.end()

    def _paren(self, text: str, i: int) -> int:
        m = _TUPLET.match(text, i)
        if not m:
            return i + 1  # a slur
        if not all(short_number(g) for g in m.groups() if g):
            raise AbcError(f"unsupported tuplet {_shown(m.group(0))!r}")
        p = int(m.group(1))
        q = int(m.group(2)) if m.group(2) else None
        r = int(m.group(3)) if m.group(3) else p
        if p < 2 or p > 9 or r < 1:
            raise AbcError(f"unsupported tuplet {_shown(m.group(0))!r}")
        if q == default_tuplet_q(p, self.meter):
            q = None
        if q is None and r == p:
            self.tokens.append(f"({p}")
        else:
            self.tokens.append(f"({p}:{q or default_tuplet_q(p, self.meter)}:{r}")
        return m.end()


def _note(m: re.Match) -> str:
    acc, letter, marks = m.group(1), m.group(2), m.group(3)
    octave = (5 if letter.islower() else 4) + marks.count("'") - marks.count(",")
    return note_token(letter, octave, None if acc is None else ACCIDENTALS[acc])


# ---------------------------------------------------------------------------------------------
# Tunes


def _clean(text: str) -> str:
    """Undo HTML residue (``&quot;``, ``<br>``) that web-scraped ABC often carries."""
    if "&" in text:
        text = html.unescape(text)
    if "<" in text:
        text = _HTML_TAG.sub("\n", text)
    return text


@dataclass(frozen=True)
class _Header:
    meter: tuple[int, int]
    unit: Fraction  # the unit note length, in whole notes
    key: tuple[str, str]
    fields: dict[str, str]  # the first R: and Q: of the header, as written
    body_start: int  # the line after K:


def _read_header(lines: list[str]) -> _Header:
    """The header up to and including ``K:``; raises ``AbcError`` with a reason."""
    meter: tuple[int, int] | None = None
    unit: Fraction | None = None
    fields: dict[str, str] = {}
    for n, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        m = _FIELD.match(line)
        if not m:
            raise AbcError("music before the K: field (truncated header?)")
        name, value = m.group(1), m.group(2)
        if name == "M":
            meter = parse_meter(value)
        elif name == "L":
            unit = parse_unit(value)
        elif name == "K":
            if meter is None:
                raise AbcError("no meter (M:) field")
            if unit is None:  # ABC 2.1's default: 1/16 below a meter of 3/4, else 1/8
                unit = Fraction(1, 16) if Fraction(*meter) < Fraction(3, 4) else Fraction(1, 8)
            return _Header(meter, unit, parse_key(value), fields, n + 1)
        elif name == "V":
            raise AbcError("several voices (V:) are not supported")
        elif name in ("R", "Q"):
            fields.setdefault(name, value)
    raise AbcError("no K: field (truncated header?)")


def written_tempo(text: str) -> float | None:
    """The tempo a tune's own ``Q:`` field writes, in quarter notes a minute (exact, not the
    band its token keeps), or None when it has none or cannot be read."""
    try:
        header = _read_header(_clean(text).splitlines())
    except AbcError:
        return None
    value = header.fields.get("Q")
    return None if value is None else tempo_qpm(value, header.unit)


def tokenize_tune(text: str, options: LexOptions = LexOptions()) -> list[str]:
    """The tokens of one tune (its text from ``X:`` on); raises ``AbcError`` with a reason."""
    lines = _clean(text).splitlines()
    header = _read_header(lines)
    meter, unit, fields = header.meter, header.unit, header.fields
    scanner = _Scanner(options, meter, unit)
    scanner.tokens = [
        *_rhythm(fields, options),
        f"M:{meter[0]}/{meter[1]}",
        key_token(*header.key),
    ]
    scanner.tokens += _tempo(fields, options, unit)
    if not options.normalise_unit:
        scanner.tokens.append(f"L:{unit.numerator}/{unit.denominator}")
    scanner.body(lines[header.body_start :])
    tokens = scanner.tokens
    if not any(info(t).kind == "note" for t in tokens):
        raise AbcError("no notes")
    if options.transpose:
        tokens = transpose_to(tokens, options.transpose)
    return tokens


def _rhythm(fields: dict[str, str], options: LexOptions) -> list[str]:
    """``R:jig`` first in the header, so that a model asked for a rhythm picks the meter."""
    rhythm = normalise_rhythm(fields["R"]) if options.rhythm and "R" in fields else None
    return [rhythm_token(rhythm)] if rhythm else []


def _tempo(fields: dict[str, str], options: LexOptions, unit: Fraction) -> list[str]:
    """The tempo band after the key: the model picks it knowing the rhythm and meter."""
    qpm = tempo_qpm(fields["Q"], unit) if options.tempo and "Q" in fields else None
    return [] if qpm is None else [tempo_token(qpm)]


def tokenize_fragment(
    text: str,
    options: LexOptions = LexOptions(),
    meter: tuple[int, int] = (4, 4),
    unit: Fraction = DEFAULT_UNIT,
) -> list[str]:
    """Tokens of a piece of tune body with no header (a prompt: "a few bars to continue")."""
    scanner = _Scanner(options, meter, unit)
    scanner.body(_clean(text).splitlines())
    return scanner.tokens


# ---------------------------------------------------------------------------------------------
# Transposition


def first_key(tokens: list[str]) -> tuple[str, str]:
    for t in tokens:
        i = info(t)
        if i.kind == "key":
            return i.tonic, i.mode
    raise AbcError("no key")


def interval(from_tonic: str, to_tonic: str) -> tuple[int, int]:
    """(letter steps, semitones) that move ``from_tonic`` to ``to_tonic``, by the shortest way."""
    steps = (LETTERS.index(to_tonic[0]) - LETTERS.index(from_tonic[0])) % 7
    if steps > 3:
        steps -= 7
    semis = (tonic_semitone(to_tonic) - tonic_semitone(from_tonic)) % 12
    candidates = [semis, semis - 12, semis + 12]
    if steps > 0:
        semis = min((c for c in candidates if c > 0), key=abs)
    elif steps < 0:
        semis = min((c for c in candidates if c < 0), key=abs)
    else:
        semis = min(candidates, key=abs)
    return steps, semis


def shifted_tonic(tonic: str, mode: str, semitones: int) -> str:
    """The simplest spelling of ``tonic`` moved by ``semitones`` (fewest sharps or flats)."""
    target = (tonic_semitone(tonic) + semitones) % 12
    spellings = [
        name
        for letter in LETTERS
        for name in (letter, letter + "#", letter + "b")
        if tonic_semitone(name) % 12 == target
    ]
    return min(spellings, key=lambda name: (abs(key_fifths(name, mode)), len(name)))


def _move_note(letter: str, octave: int, alteration: int, steps: int, semis: int):
    index = LETTERS.index(letter) + steps
    new_letter = LETTERS[index % 7]
    new_octave = octave + index // 7
    absolute = 12 * octave + NATURAL_SEMITONE[letter] + alteration + semis
    return new_letter, new_octave, absolute - (12 * new_octave + NATURAL_SEMITONE[new_letter])


def _move_tonic(tonic: str, steps: int, semis: int) -> str:
    alteration = (1 if tonic.endswith("#") else 0) - (1 if tonic.endswith("b") else 0)
    letter, _, alt = _move_note(tonic[0], 4, alteration, steps, semis)
    if alt not in (-1, 0, 1):
        raise AbcError(f"cannot spell the key {tonic} moved by {semis} semitones")
    return letter + {-1: "b", 0: "", 1: "#"}[alt]


_CHORD_ROOT = re.compile(r"([A-G])([#b]?)")


def transpose_tokens(tokens: list[str], steps: int, semis: int) -> list[str]:
    """Move every note, key, chord symbol and grace note by a spelled interval.

    Unmarked notes stay unmarked: the key signature moves with them, and explicit accidentals
    (which last to the end of the bar in ABC) are respelled on the moved letter.
    """
    if steps == 0 and semis == 0:
        return list(tokens)
    out = []
    for t in tokens:
        i = info(t)
        if i.kind == "note":
            letter, octave, alt = _move_note(i.letter, i.octave, i.accidental or 0, steps, semis)
            if i.accidental is None:
                out.append(note_token(letter, octave, None))
            elif abs(alt) > 2:
                raise AbcError("transposition needs more than a double accidental")
            else:
                out.append(note_token(letter, octave, alt))
        elif i.kind == "key":
            out.append(key_token(_move_tonic(i.tonic, steps, semis), i.mode))
        elif i.kind == "chord_symbol":
            out.append(_CHORD_ROOT.sub(lambda m: _move_tonic(m.group(0), steps, semis), t))
        elif i.kind == "grace":
            out.append(re.sub(_NOTE, lambda m: _moved_grace(m, steps, semis), t))
        else:
            out.append(t)
    return out


def _moved_grace(m: re.Match, steps: int, semis: int) -> str:
    i = info(_note(m))
    letter, octave, alt = _move_note(i.letter, i.octave, i.accidental or 0, steps, semis)
    return note_token(letter, octave, None if i.accidental is None else alt) + m.group(4)


def transpose_to(tokens: list[str], tonic: str) -> list[str]:
    """The tune moved so that its first key has ``tonic`` (its mode is kept)."""
    tonic = tonic[0].upper() + tonic[1:]
    if tonic[0] not in LETTERS or tonic[1:] not in ("", "#", "b"):
        raise ValueError(f"not a tonic: {tonic!r}")
    return transpose_tokens(tokens, *interval(first_key(tokens)[0], tonic))


def transpose_by(tokens: list[str], semitones: int) -> list[str]:
    """The tune moved by ``semitones``, its new key spelled with the fewest accidentals."""
    tonic, mode = first_key(tokens)
    return transpose_to(tokens, shifted_tonic(tonic, mode, semitones))
