"""Mutation fuzzing of the ABC and MIDI readers, shared by tests/test_fuzz_readers.py (seconds,
fixed seeds) and benchmarks/fuzz_readers.py (minutes).

The contract: whatever the bytes, a reader either reads them or raises one of genseq's own
errors (``AbcError``, ``MidiError``, ``SkipDocument``, ``GenseqError``), which the CLI turns
into one line or a counted skip. Any other exception, an input that takes longer than its time
limit, or one that needs more memory than its limit is a failure.

Inputs are real files mutated: tunes of the ``folk-abc`` corpus (and Nottingham's ABC files
when ../shared holds them), and MIDI files rendered from those tunes plus Nottingham's MIDI
files. Each input is read the way every command reads a document: split into tunes by
``genseq.documents``, tokenized at the ``abc`` level (with key augmentation and lexer
options), interpreted into notes, encoded at both MIDI levels, and counted by `music stats`.
"""

from __future__ import annotations

import contextlib
import io
import random
import resource
import signal
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from genseq.errors import GenseqError
from genseq.music.abc_lexer import AbcError
from genseq.music.midi_io import MidiError
from genseq.tokenization import SkipDocument

EXPECTED = (AbcError, MidiError, SkipDocument, GenseqError)
SHARED_NOTTINGHAM = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "nottingham"
MEMORY_HEADROOM = 2 << 30  # bytes of address space an input may add before it fails
MAX_REASON = 200  # characters of an error's message: the CLI shows it on one line


# ---------------------------------------------------------------------------------------------
# Running one input


class InputTimeout(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` swallows it."""


@dataclass(frozen=True)
class Failure:
    reader: str
    kind: str  # the exception's type name, "timeout" or "memory"
    message: str
    where: str  # the innermost frames of the traceback
    data: bytes
    input_id: str = ""  # "seed:i": ``random.Random(input_id)`` remakes the input


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (on the main thread of a POSIX system). An alarm
    already set (pytest-timeout's) is set again afterwards with the time it had left."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def alarm(signum, frame):
        raise InputTimeout(f"took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    outer, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:
            left = max(outer - (time.monotonic() - start), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, interval)


@contextlib.contextmanager
def memory_limit(headroom: int = MEMORY_HEADROOM) -> Iterator[None]:
    """Cap the address space at its current size plus ``headroom``, so that an input asking
    for gigabytes fails at once with ``MemoryError`` instead of exhausting the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        yield
        return
    cap = pages * resource.getpagesize() + headroom
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def check(reader: str, read: Callable[[bytes], object], data: bytes, seconds: float):
    """``None`` if ``read(data)`` ends well (read, or one of genseq's errors with a reason of
    one short line), else a Failure."""
    return run_input(reader, read, data, seconds)[0]


def run_input(
    reader: str, read: Callable[[bytes], object], data: bytes, seconds: float
) -> tuple[Failure | None, object]:
    """``check``'s verdict, and what ``read`` returned (None when it raised)."""
    try:
        with time_limit(seconds):
            return None, read(data)
    except EXPECTED as exc:
        message = str(exc)
        if len(message) <= MAX_REASON and not any(c in message for c in "\r\n"):
            return None, None
        return Failure(reader, "long reason", message[:300], _where(exc), data), None
    except InputTimeout as exc:
        return Failure(reader, "timeout", str(exc), _where(exc), data), None
    except MemoryError as exc:
        return Failure(reader, "memory", str(exc), _where(exc), data), None
    except Exception as exc:  # anything else escaping a reader is the bug being hunted
        return Failure(reader, type(exc).__name__, str(exc)[:300], _where(exc), data), None


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))


# ---------------------------------------------------------------------------------------------
# The readers, as the commands use them


class Readers:
    """Both readers with their tokenizers built once (building one costs milliseconds)."""

    def __init__(self, workdir: Path) -> None:
        from genseq.tokenization import new_tokenizer

        self.file = Path(workdir) / "input.abc"
        self.melody = new_tokenizer("midi-melody", augment_keys=2)
        self.melody.fit(iter([]))
        self.performance = new_tokenizer("midi-performance", augment_keys=2)
        self.performance.fit(iter([]))
        self.rng = random.Random(0)  # reseeded from each input: a failure replays alone

    def abc(self, data: bytes) -> bool:
        """An ABC file: its tunes as tokenize, eval and `music stats` read them; whether any
        tune was read."""
        from genseq.corpus import Document
        from genseq.documents import iter_units

        self.rng.seed(zlib.crc32(data))
        self.file.write_bytes(data)
        errors = self.rng.choice(["strict", "replace", "ignore"])
        doc = Document(self.file.name, self.file, tunebook=True)
        tunes = [unit.tune for unit in iter_units([doc], errors, tunes=True)]
        read = [self._tune(tune.text) for tune in tunes]
        self._abc_stats(tunes)
        return any(read)

    def _tune(self, text: str) -> bool:
        """One tune at every level that reads it, and as a prompt; whether it tokenized."""
        from genseq.music.abc_lexer import tokenize_fragment
        from genseq.music.notes import tune_notes
        from genseq.tokenization.abc import AbcTokenizer

        tokenizer = AbcTokenizer(**self._lexer_options(), augment_keys=2)
        outcomes = []
        for call in (
            lambda: [_sound_tune(tune_notes(v)) for v in tokenizer.tune_tokens(text, True)],
            lambda: _sound_tune(tune_notes(tokenizer.tune_tokens(text)[0], False)),
            lambda: _known_ids(self.melody, self.melody.encode_training_document(text)),
            lambda: _known_ids(self.performance, self.performance.encode_training_document(text)),
            lambda: tokenize_fragment(text.partition("K:")[2], tokenizer.options),
        ):
            try:
                call()
                outcomes.append(True)
            except (AbcError, SkipDocument):
                outcomes.append(False)
        return outcomes[1]

    def _lexer_options(self) -> dict:
        rng = self.rng
        return {
            "chords": rng.random() < 0.3,
            "decorations": rng.random() < 0.3,
            "grace": rng.random() < 0.3,
            "normalise_unit": rng.random() < 0.8,
            "transpose": rng.choice([None, None, "C", "F#", "Bb"]),
        }

    def _abc_stats(self, tunes: list) -> None:
        from genseq.music.midi_stats import note_stats, read_documents
        from genseq.music.stats import SourceTune, compute_stats

        if not tunes:
            return
        sources = [SourceTune(tune, "input.abc") for tune in tunes]
        compute_stats(sources, sources[:1], parse_limit=0)
        note_stats(read_documents([("input.abc", tune.text) for tune in tunes]))

    def midi(self, data: bytes) -> bool:
        """A MIDI file's bytes: read, each part chosen, both encodings, `music stats`;
        whether it read with notes."""
        from genseq.music.midi_io import read_midi, select_notes
        from genseq.music.midi_stats import note_stats, read_documents

        self.rng.seed(zlib.crc32(data))
        note_stats(read_documents([("input.mid", data)]))
        for tokenizer in (self.melody, self.performance):
            try:
                _known_ids(tokenizer, tokenizer.encode_training_document(data))
            except SkipDocument:
                continue
        try:
            score = read_midi(data)
            _sound_score(score)
            for melody in (True, False):
                select_notes(score, melody)
        except MidiError:
            return False
        for track, program in ((self.rng.choice(["0", "1", "melody"]), None), (None, 0)):
            try:
                select_notes(score, True, track=track, program=program)
            except MidiError:
                continue
        return True


class Nonsense(AssertionError):
    """A reader returned what no music is (a note ending before it starts...): a failure."""


def _sound_score(score) -> None:
    """What a read MIDI file must be: positive resolution, notes that end after they start,
    pitches and velocities in MIDI's range."""
    if score.resolution <= 0:
        raise Nonsense(f"resolution {score.resolution}")
    for n in score.notes:
        if not (0 <= n.start < n.end and 0 <= n.pitch <= 127 and 1 <= n.velocity <= 127):
            raise Nonsense(f"note {n}")


def _sound_tune(tune) -> None:
    """What a read tune must be: notes in MIDI's range that last, inside the tune's length."""
    for n in tune.notes:
        if not (0 <= n.start and 0 < n.duration and n.start + n.duration <= tune.length):
            raise Nonsense(f"note {n} in a tune of length {tune.length}")
        if not 0 <= n.pitch <= 127:
            raise Nonsense(f"pitch {n.pitch}")


def _known_ids(tokenizer, variants) -> None:
    """Encoded documents hold only tokens of the fixed vocabulary (never ``<unk>``)."""
    for ids in variants:
        if len(ids) == 0 or (ids == tokenizer.unk_id).any():
            raise Nonsense(f"{len(ids)} ids, {int((ids == tokenizer.unk_id).sum())} unknown")


# ---------------------------------------------------------------------------------------------
# Real inputs


def folk_tunes() -> list[str]:
    """Every tune of the bundled ``folk-abc`` corpus (music21's folk collections)."""
    from genseq.corpus import resolve_sources
    from genseq.documents import iter_units

    corpus = resolve_sources(["folk-abc"])
    try:
        return [unit.tune.text for unit in iter_units(corpus.documents, tunes=True)]
    finally:
        corpus.close()


def nottingham_tunes(root: Path = SHARED_NOTTINGHAM) -> list[str]:
    """Nottingham's cleaned ABC tunes, or none when ``root`` does not hold them."""
    from genseq.music.abc_lexer import split_tunebook

    folder = root / "ABC_cleaned"
    files = sorted(folder.glob("*.abc")) if folder.is_dir() else []
    return [t.text for f in files for t in split_tunebook(f.read_text(encoding="utf-8"))]


def rendered_midi(tunes: list[str], limit: int, seed: int = 0) -> list[bytes]:
    """MIDI files genseq renders from ABC tunes (tempo, time and key signatures, one track),
    plus files of several tracks, drums and tempo changes: MIDI seeds that need no corpus."""
    from genseq.music.abc_lexer import tokenize_tune
    from genseq.music.notes import tune_notes
    from genseq.music.render import to_pretty_midi

    rng = random.Random(seed)
    out: list[bytes] = []
    for text in rng.sample(tunes, min(len(tunes), 4 * limit)):
        if len(out) >= limit:
            break
        try:
            tune = tune_notes(tokenize_tune(text))
        except AbcError:
            continue
        midi = to_pretty_midi(tune, tempo_qpm=rng.choice([60.0, 120.0, 200.0]))
        if len(out) % 3 == 0:
            _add_parts(midi, rng)
        out.append(_midi_bytes(midi))
    return out


def _add_parts(midi, rng: random.Random) -> None:
    """A bass part, drums and a tempo change beside the tune."""
    import pretty_midi

    end = max((n.end for i in midi.instruments for n in i.notes), default=4.0)
    bass = pretty_midi.Instrument(program=32, name="bass")
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    t = 0.0
    while t < end:
        bass.notes.append(pretty_midi.Note(80, rng.randrange(36, 48), t, t + 0.5))
        drums.notes.append(pretty_midi.Note(100, 36, t, t + 0.1))
        t += 0.5
    midi.instruments += [bass, drums]
    midi._tick_scales.append((midi.time_to_tick(end / 2), 60.0 / (90.0 * midi.resolution)))


def _midi_bytes(midi) -> bytes:
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def nottingham_midi(
    limit: int | None = None, seed: int = 0, root: Path = SHARED_NOTTINGHAM
) -> list[bytes]:
    """Nottingham's MIDI files (melody and chords), or none when ``root`` lacks them."""
    folder = root / "MIDI"
    files = sorted(folder.rglob("*.mid")) if folder.is_dir() else []
    if limit is not None and len(files) > limit:
        files = random.Random(seed).sample(files, limit)
    return [f.read_bytes() for f in files]


# ---------------------------------------------------------------------------------------------
# ABC mutations

ABC_SYMBOLS = [
    "|", "||", "|]", "[|", "|:", ":|", "::", ":", "[1", "[2", "|1", ":|2", "[1,3", "[1-9",
    "(3", "(2", "(9", "(3:2:3", "(5:4:99", "(", ")", "A", "c'", "C,", "^f", "_B", "=e", "^^g",
    "__a", "z", "z4", "x", "Z", "X", "&", "2", "/", "//", "3/", "/0", "0", ">", "<", ">>",
    "<<<", "-", "[", "]", "[CEG]", "[]", "[c2e2]3/2", '"Am"', '"', "!trill!", "!", "+fermata+",
    "+", "{g}", "{/ag}", "{", "}", "~", ".", "H", "T", "u", "v", "y", "%", "\\", "`", "$",
    "*", "[K:Ddor]", "[M:3/4]", "[L:1/16]", "[V:2]", "[K:]", "[M:none]", "[L:0/1]", "[P:A]",
    "&quot;", "&amp;", "&#0;", "&#x110000;", "<br>", "</p>", "\t", " ", "\n", "\r", "\x00",
    "\u00e9", "\ufeff", "\udcff", "\u00b2", "\u0662", "\u2028", "\x85", "\x0c",
]  # fmt: skip
HEADER_VALUES = {
    "M": ["C", "C|", "6/8", "0/4", "4/0", "(2+3+2)/8", "+/8", "999999999999/1", "1/999999999",
          "none", "", "3/4 %c", "2/4/4"],
    "L": ["1/8", "1/16", "1/4", "1/0", "0/1", "1/99999999", "99999999/1", "", "1/3", "a/b"],
    "K": ["G", "Am", "Bb locrian", "F#dor", "", "none", "HP", "Hp", "Zmaj", "C exp ^f _b",
          "Cclef=bass", "D transpose=2", "cmix", "E bogus", "Cb", "B#", "G ^c", "9"],
    "X": ["1", "", "x", "-1", "99999999999999999999"],
    "T": ["", "Title", "X:2", "K:G"],
    "V": ["1", "2 clef=bass"],
    "P": ["A", "ABAB"],
    "Q": ["1/4=120", "0", ""],
}  # fmt: skip
EXTREMES = [
    "A" + "9" * 40, "z" + "9" * 30, "A" + "/" * 400, "c" + "'" * 300, "C" + "," * 300,
    "^" * 200 + "c", "(3" * 50, "(" * 2000, "[" * 2000, "]" * 500, "|:" * 2000, ":|" * 2000,
    "|: A :|" * 500, "[1 A :| [2 B :|" * 300, "A-" * 3000 + "A", "A>" * 2000 + "A", "!" * 3000,
    "[" + "A" * 2000 + "]", "[K:C]" * 1000, "[M:3/4]" * 1000, "&#" + "9" * 50 + ";",
    "[1-99999999999999", "(9:99999999999:9", "(99999999999999", "A" * 3000, "9" * 5000,
    "A" + "9" * 5000, "(3:" + "9" * 5000, "[1" + "0" * 5000, "|" + "1" * 5000, "|\u00b2",
    "[\u00b2", "A\u0662", "|\u0661", "M:" + "9" * 5000 + "/4\n", "L:1/" + "9" * 5000 + "\n",
]  # fmt: skip


def mutate_abc(text: str, rng: random.Random, donors: list[str]) -> str:
    """``text`` after one to eight random edits (characters, lines, header fields, symbols)."""
    for _ in range(rng.randint(1, 8)):
        text = rng.choice(_ABC_EDITS)(text, rng, donors)
    return text


def _span(text: str, rng: random.Random, longest: int = 20) -> tuple[int, int]:
    i = rng.randrange(len(text) + 1)
    return i, min(len(text), i + rng.randint(1, longest))


def _delete_chars(text, rng, donors):
    i, j = _span(text, rng)
    return text[:i] + text[j:]


def _duplicate_chars(text, rng, donors):
    i, j = _span(text, rng, 40)
    return text[:j] + text[i:j] * rng.randint(1, 5) + text[j:]


def _swap_chars(text, rng, donors):
    if len(text) < 2:
        return text
    i, j = sorted(rng.sample(range(len(text)), 2))
    return text[:i] + text[j] + text[i + 1 : j] + text[i] + text[j + 1 :]


def _insert_symbol(text, rng, donors):
    i = rng.randrange(len(text) + 1)
    symbols = "".join(rng.choice(ABC_SYMBOLS) for _ in range(rng.randint(1, 6)))
    return text[:i] + symbols + text[i:]


def _insert_extreme(text, rng, donors):
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(EXTREMES) + text[i:]


def _line_edit(text, rng, donors):
    lines = text.split("\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    edit = rng.randrange(5)
    if edit == 0:
        del lines[i]
    elif edit == 1:
        lines.insert(i, lines[j])
    elif edit == 2:
        lines[i], lines[j] = lines[j], lines[i]
    elif edit == 3:
        lines.insert(i, "")
    else:
        rng.shuffle(lines)
    return "\n".join(lines)


def _header_field(text, rng, donors):
    """Set, add or remove a header field (M: L: K: X: T: V: P: Q:)."""
    name = rng.choice(list(HEADER_VALUES))
    value = rng.choice(HEADER_VALUES[name])
    lines = text.split("\n")
    at = [i for i, ln in enumerate(lines) if ln.startswith(name + ":")]
    if at and rng.random() < 0.3:
        del lines[rng.choice(at)]
    elif at and rng.random() < 0.7:
        lines[rng.choice(at)] = f"{name}:{value}"
    else:
        lines.insert(rng.randrange(len(lines) + 1), f"{name}:{value}")
    return "\n".join(lines)


def _splice(text, rng, donors):
    """A stretch of another tune (header lines included) spliced in."""
    donor = rng.choice(donors)
    i, j = _span(donor, rng, 200)
    k = rng.randrange(len(text) + 1)
    return text[:k] + donor[i:j] + text[k:]


def _random_chars(text, rng, donors):
    i = rng.randrange(len(text) + 1)
    noise = "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x10FFFF)]))
                    for _ in range(rng.randint(1, 10)))  # fmt: skip
    return text[:i] + noise + text[i:]


_ABC_EDITS = [
    _delete_chars, _duplicate_chars, _swap_chars, _insert_symbol, _insert_symbol,
    _insert_extreme, _line_edit, _header_field, _header_field, _splice, _random_chars,
]  # fmt: skip


def abc_input(tunes: list[str], rng: random.Random) -> bytes:
    """One to three real tunes, mutated, as a file's bytes (sometimes with byte damage)."""
    text = "\n".join(rng.choice(tunes) for _ in range(rng.randint(1, 3)))
    text = mutate_abc(text, rng, tunes)
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:
        data = flip_bits(data, rng, rng.randint(1, 8))
    if rng.random() < 0.05:
        data = data[: rng.randrange(len(data) + 1)]
    return data


# ---------------------------------------------------------------------------------------------
# MIDI mutations


def flip_bits(data: bytes, rng: random.Random, n: int) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(n):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _truncate(data, rng, donors):
    return data[: rng.randrange(len(data) + 1)]


def _flip(data, rng, donors):
    return flip_bits(data, rng, rng.choice([1, 1, 2, 4, 16, 64]))


def _set_bytes(data, rng, donors):
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.choice([0, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    return bytes(out)


def _chunk_length(data, rng, donors):
    """A chunk's length field set to 0, 1, a little off, or huge."""
    starts = [i for i in range(len(data) - 7) if data[i : i + 4] in (b"MThd", b"MTrk")]
    if not starts:
        return _set_bytes(data, rng, donors)
    i = rng.choice(starts) + 4
    old = int.from_bytes(data[i : i + 4], "big")
    new = rng.choice([0, 1, 5, old - 1, old + 1, old * 2, 0x7FFFFFFF, 0xFFFFFFFF])
    return data[:i] + (new % 2**32).to_bytes(4, "big") + data[i + 4 :]


def _header(data, rng, donors):
    """The header's format, track count or division set to odd values."""
    if len(data) < 14 or data[:4] != b"MThd":
        return _set_bytes(data, rng, donors)
    field = rng.choice([8, 10, 12])
    value = rng.choice([0, 1, 2, 3, 0x7FFF, 0x8000, 0xE250, 0xFFFF, rng.randrange(65536)])
    return data[:field] + value.to_bytes(2, "big") + data[field + 2 :]


def _events(data, rng, donors):
    """Delta times, tempos and time signatures pushed to extremes, through mido."""
    import mido

    try:
        parsed = mido.MidiFile(file=io.BytesIO(data), clip=True)
        for track in parsed.tracks:
            for k, msg in enumerate(track):
                if rng.random() < 0.05:
                    track[k] = _extreme(msg, rng)
        if rng.random() < 0.3:
            parsed.ticks_per_beat = rng.choice([1, 2, 0x7FFF])
        buffer = io.BytesIO()
        parsed.save(file=buffer)
    except Exception:  # a seed mido cannot parse or write: damage its bytes instead
        return _flip(data, rng, donors)
    return buffer.getvalue()


def _extreme(msg, rng: random.Random):
    big = rng.choice([0, 0x0FFFFFFF, 0x00FFFFFF, 10**6])
    if msg.type == "set_tempo":
        return msg.copy(tempo=rng.choice([0, 1, 0xFFFFFF]), time=msg.time)
    if msg.type == "time_signature":
        return msg.copy(numerator=rng.choice([0, 1, 255]), denominator=rng.choice([1, 2**20]))
    if msg.type in ("note_on", "note_off") and rng.random() < 0.3:
        return msg.copy(velocity=rng.choice([0, 1, 127]), time=msg.time)
    return msg.copy(time=big)


def _splice_bytes(data, rng, donors):
    donor = rng.choice(donors)
    i = rng.randrange(len(donor) + 1)
    j = min(len(donor), i + rng.randint(1, 256))
    k = rng.randrange(len(data) + 1)
    if rng.random() < 0.5:
        return data[:k] + donor[i:j] + data[k:]
    return data[:k] + donor[i:j] + data[k + (j - i) :]


def _insert_delete(data, rng, donors):
    i = rng.randrange(len(data) + 1)
    if rng.random() < 0.5:
        return data[:i] + data[i + rng.randint(1, 16) :]
    return data[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + data[i:]


RAW_EVENTS = [
    b"\x00\xf0\x85\x80\x80\x00\x01", b"\x00\xf7\x7f", b"\x00\xff\x51\x03\x00\x00\x00",
    b"\x00\xff\x58\x04\x00\xff\x18\x08", b"\x00\xff\x59\x02\x11\x05",
    b"\x00\xff\x03\x8f\xff\xff\x7fname", b"\x00\xff\x7f\x00", b"\x00\xff\x2f\x00",
    b"\x00\x3c\x40", b"\x00\x9f\x80\xff", b"\xff\xff\xff\x7f\x90\x3c\x40",
    b"\x00\xc9\x7f", b"\x00\xe0\x7f\x7f", b"\x00\xf2\x00\x00", b"\x00\xf8", b"\x00\xfd",
    b"\x00\x90\x3c\x00", b"\x00\x80\x3c\x00" * 8, b"\x00\x90\x3c\x40" * 8,
]  # fmt: skip


def _insert_event(data, rng, donors):
    """Raw events (sysex, meta, running status, odd status bytes) inside a track, with the
    track's length grown to hold them."""
    starts = [i for i in range(len(data) - 7) if data[i : i + 4] == b"MTrk"]
    if not starts:
        return _insert_delete(data, rng, donors)
    i = rng.choice(starts)
    size = int.from_bytes(data[i + 4 : i + 8], "big")
    at = i + 8 + rng.randrange(min(size, len(data) - i - 8) + 1)
    event = b"".join(rng.choice(RAW_EVENTS) for _ in range(rng.randint(1, 3)))
    grown = (size + len(event)) % 2**32
    return data[: i + 4] + grown.to_bytes(4, "big") + data[i + 8 : at] + event + data[at:]


def _random_file(data, rng, donors):
    noise = bytes(rng.randrange(256) for _ in range(rng.randint(0, 2000)))
    if rng.random() < 0.5:
        return noise
    return data[:14] + b"MTrk" + len(noise).to_bytes(4, "big") + noise


_MIDI_EDITS = [
    _truncate, _flip, _flip, _set_bytes, _chunk_length, _header, _events, _events,
    _insert_event, _insert_event, _splice_bytes, _insert_delete, _random_file,
]  # fmt: skip


def mutate_midi(data: bytes, rng: random.Random, donors: list[bytes]) -> bytes:
    """``data`` after one to four random edits."""
    for _ in range(rng.randint(1, 4)):
        data = rng.choice(_MIDI_EDITS)(data, rng, donors)
    return data


def midi_input(files: list[bytes], rng: random.Random) -> bytes:
    return mutate_midi(rng.choice(files), rng, files)


# ---------------------------------------------------------------------------------------------
# A fuzzing session


@dataclass
class Tally:
    tried: int = 0
    readable: int = 0  # inputs read (some tune, or a MIDI file with notes): how deep it went
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0


def fuzz(
    reader: str,
    read: Callable[[bytes], object],
    make: Callable[[random.Random], bytes],
    seed: int,
    count: int | None = None,
    seconds: float | None = None,
    per_input: float = 5.0,
) -> Tally:
    """Read ``count`` inputs (or as many as fit in ``seconds``) made from ``seed``: each input
    ``i`` comes from ``random.Random(f"{seed}:{i}")``, so one failing input is remade alone.
    An input may take ``per_input`` seconds per 10 kB (at least ``per_input``)."""
    tally = Tally()
    start = time.perf_counter()
    with memory_limit():
        while (count is None or tally.tried < count) and (
            seconds is None or time.perf_counter() - start < seconds
        ):
            input_id = f"{seed}:{tally.tried}"
            data = make(random.Random(input_id))
            tally.tried += 1
            limit = per_input * max(1.0, len(data) / 10_000)  # the reader is linear in size
            failure, readable = run_input(reader, read, data, limit)
            if failure is not None:
                tally.failures.append(replace(failure, input_id=input_id))
            elif readable:
                tally.readable += 1
    tally.seconds = time.perf_counter() - start
    return tally
