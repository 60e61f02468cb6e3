"""Tokens -> ABC text: a proper tunebook entry (``X:``, ``T:``, headers, the tune body).

The body is written as a musician would: notes and their durations run together, bars are
separated by spaces, endings sit on their bar line (``|1``, ``:|2``), and a line breaks after
every four bars, or sooner where the next bar would bring the line past ``NOTES_PER_LINE``
notes, rests and chords (more do not fit on a staff line: abcm2ps's "Line too much
shrunk"). Rhythm, meter, key, tempo and unit tokens at the start become header fields;
later ones become field lines of their own (music21 ignores some inline ``[K:F]`` fields).
No token spaces leak into the output (folk-rnn#11).
"""

from __future__ import annotations

from collections.abc import Sequence

from genseq.music.abc_vocab import info
from genseq.music.header import RHYTHM_TEMPI, rhythm_field, tempo_field

BARS_PER_LINE = 4
NOTES_PER_LINE = 32
MODE_SUFFIX = {
    "maj": "",
    "min": "m",
    "dor": "dor",
    "mix": "mix",
    "phr": "phr",
    "lyd": "lyd",
    "loc": "loc",
}


def key_field(tonic: str, mode: str) -> str:
    return f"{tonic}{MODE_SUFFIX[mode]}"


FIELD_LETTERS = {"rhythm": "R", "meter": "M", "key": "K", "tempo": "Q", "unit": "L"}


def _field(token: str) -> str:
    """A header token as the ABC field it stands for (``K:Dmix``, ``R:slip jig``,
    ``Q:1/4=120``)."""
    i = info(token)
    if i.kind == "key":
        return "K:" + key_field(i.tonic, i.mode)
    if i.kind == "rhythm":
        return "R:" + rhythm_field(i.rhythm)
    if i.kind == "tempo":
        return "Q:" + tempo_field(float(i.value))
    return token


def header_tempo(tokens: Sequence[str]) -> float | None:
    """The tempo (quarter notes per minute) the tune's header sets: its tempo token, else the
    usual tempo of its rhythm token (``RHYTHM_TEMPI``), else None."""
    rhythm_tempo = None
    for token in tokens:
        i = info(token)
        if i.kind == "tempo":
            return float(i.value)
        if i.kind == "rhythm":
            rhythm_tempo = RHYTHM_TEMPI.get(i.rhythm)
        elif i.kind not in FIELD_LETTERS:
            break
    return rhythm_tempo


def split_header(tokens: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """The leading header tokens (rhythm, meter, key, tempo, unit) as fields, and the rest of
    the tune."""
    fields: dict[str, str] = {}
    n = 0
    for token in tokens:
        kind = info(token).kind
        letter = FIELD_LETTERS.get(kind)
        if letter is None or letter in fields:
            break
        fields[letter] = _field(token)[2:]
        n += 1
    return fields, list(tokens[n:])


def body_text(tokens: Sequence[str]) -> str:
    """The tune body: ABC text for tokens that come after the header."""
    out: list[str] = []
    bars = notes = 0  # on the current line
    bar_start = 0  # where the current bar's tokens begin
    for k, token in enumerate(tokens):
        i = info(token)
        nxt = info(tokens[k + 1]).kind if k + 1 < len(tokens) else None
        if i.kind == "bar":
            out.append(token if not out or out[-1] in (" ", "\n") else f" {token}")
            if nxt == "ending":
                continue
            closed, bar_start = _bar_notes(tokens[bar_start:k]), k + 1
            bars += closed > 0  # an empty bar (``|:`` opening the tune, ``:| |:``) is no bar
            notes += closed
            full = bars == BARS_PER_LINE or notes + _bar_notes(tokens[k + 1 :]) > NOTES_PER_LINE
            if full and k + 1 < len(tokens) and not _reads_as_field(tokens[k + 1 :]):
                out.append("\n")
                bars = notes = 0
            else:
                out.append(" ")
        elif i.kind == "ending":
            if out and out[-1].strip() in ("|", ":|"):
                out.append(token[1:])  # "|1", ":|2", "|1,2"
            else:
                out.append(token)
            out.append(" ")
        elif i.kind in FIELD_LETTERS:  # a field line of its own: read everywhere
            if out and not out[-1].endswith("\n"):
                out[-1] = out[-1].rstrip(" ")
                out.append("\n")
                bars = notes = 0
            out.append(f"{_field(token)}\n")
        elif i.kind == "special":
            continue
        elif i.kind == "duration" and k > 0 and info(tokens[k - 1]).kind == "duration":
            out.append(f" {token}")  # never glue two durations into one number
        else:
            out.append(token)
    return "".join(out).strip() + "\n"


def _reads_as_field(tokens: Sequence[str]) -> bool:
    """A line starting with these tokens would read as a field (``G :|`` as ``G:``): abc2midi
    warns "Potentially ambiguous line", so no line break goes before them."""
    return len(tokens) > 1 and len(tokens[0]) == 1 and tokens[0].isalpha() and tokens[1][0] == ":"


def _bar_notes(tokens: Sequence[str]) -> int:
    """Notes, rests and chords (a chord counts once) before the first bar line in ``tokens``."""
    count, in_chord = 0, False
    for token in tokens:
        kind = info(token).kind
        if kind == "bar":
            break
        in_chord = (in_chord or kind == "chord_start") and kind != "chord_end"
        count += kind in ("rest", "chord_start") or (kind == "note" and not in_chord)
    return count


def tune_text(
    tokens: Sequence[str], number: int = 1, title: str = "", tempo: float | None = None
) -> str:
    """A complete tunebook entry for one tune. ``tempo`` (quarter notes a minute) is its
    ``Q:``, in place of the tune's own tempo token; with neither there is no ``Q:``."""
    fields, body = split_header(tokens)
    lines = [f"X:{number}", f"T:{title or f'genseq tune {number}'}"]
    if "R" in fields:
        lines.append(f"R:{fields['R']}")
    lines.append(f"M:{fields.get('M', 'none')}")
    lines.append(f"L:{fields.get('L', '1/8')}")
    if tempo is not None:
        lines.append(f"Q:{tempo_field(tempo)}")
    elif "Q" in fields:
        lines.append(f"Q:{fields['Q']}")
    lines.append(f"K:{fields.get('K', 'C')}")
    return "\n".join(lines) + "\n" + body_text(body)
