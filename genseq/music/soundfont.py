"""Which General MIDI SoundFont the WAV files play, and the player that renders through it.

The player is FluidSynth, through ``pyfluidsynth`` (a pure-Python wheel that loads the system's
libfluidsynth: Debian/Ubuntu ``libfluidsynth3``, Fedora ``fluidsynth-libs``, Homebrew
``fluid-synth``), which pretty_midi drives with ``PrettyMIDI.fluidsynth``. ``tinysoundfont`` is
ten times faster but requires ``pyaudio``, which has no Linux wheel: ``pip install genseq``
would need a compiler and the PortAudio headers.

The SoundFont is ``--soundfont``, else ``$GENSEQ_SOUNDFONT``, else the first of
``SEARCH_PLACES`` that holds one, else the small General MIDI SoundFont (TimGM6mb) that
pretty_midi ships. A file the user named is checked at the door and refused with one line;
one that is merely found is skipped if FluidSynth cannot play it (not a SoundFont, damaged,
or without the tune's instrument). Without a SoundFont or without the library the WAV files
fall back to pretty_midi's sine synthesiser, and ``choose`` says so.

A SoundFont is loaded once per process and sample rate (``synth_for``): FluidR3_GM is 141 MB,
and loading it for each of 100 tunes would cost more than rendering them.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from genseq.errors import GenseqError

ENV = "GENSEQ_SOUNDFONT"

# Where packages put General MIDI SoundFonts, the fuller ones first.
SEARCH_PLACES = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),  # Debian/Ubuntu fluid-soundfont-gm
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),  # Fedora fluid-soundfont-gm, Arch soundfont-fluid
    Path("/usr/share/soundfonts/default.sf2"),  # the link FluidSynth itself looks for
    Path("/usr/share/sounds/sf2/default-GM.sf2"),  # Debian's alternatives link
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),  # Debian/Ubuntu timgm6mb-soundfont
    Path("/opt/homebrew/share/soundfonts/default.sf2"),  # Homebrew on Apple silicon
    Path("/usr/local/share/soundfonts/default.sf2"),  # Homebrew on Intel, or built by hand
    Path("~/.local/share/soundfonts/default.sf2"),  # the user's own
)

NO_PLAYER = (
    "the FluidSynth library is not installed (Debian/Ubuntu: apt-get install libfluidsynth3; "
    "Fedora: dnf install fluidsynth-libs; macOS: brew install fluid-synth)"
)


@dataclass(frozen=True)
class WavSound:
    """How the WAV files of one command sound: ``soundfont`` None is the sine synthesiser;
    ``note`` is the one line that says which (empty when a named SoundFont is used)."""

    soundfont: Path | None
    note: str


def check_soundfont(path: Path, name: str = "--soundfont") -> Path:
    """``path`` if it is a whole SoundFont file (a RIFF ``sfbk`` file as long as its header
    says); else one ``GenseqError`` naming ``name``. Reading 12 bytes catches a wrong file, a
    missing one and a truncated download before FluidSynth prints its own pages of errors."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise GenseqError(f"{name} {path}: cannot read ({exc.strerror})") from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise GenseqError(f"{name} {path}: not a SoundFont (.sf2) file")
    declared = struct.unpack("<I", head[4:8])[0] + 8
    if size < declared:
        raise GenseqError(f"{name} {path}: truncated SoundFont ({size:,} of {declared:,} bytes)")
    return path


def resolve_soundfont(given: Path | None = None) -> Path | None:
    """The SoundFont to play: ``given``, else ``$GENSEQ_SOUNDFONT``, else the first good file
    of ``SEARCH_PLACES``, else pretty_midi's own; None if there is none. A named file (given
    or in the variable) that is not a SoundFont is an error, not skipped: the user asked for
    that sound."""
    return next(candidates(given), None)


def candidates(given: Path | None = None) -> Iterator[Path]:
    """The named SoundFont (checked: an error if it is no SoundFont), or every found file
    whose header is a SoundFont's, in the order of ``SEARCH_PLACES``."""
    if given is not None:
        yield check_soundfont(given)
        return
    if named := os.environ.get(ENV):
        yield check_soundfont(Path(named), f"${ENV}")
        return
    for place in (*SEARCH_PLACES, _bundled()):
        if place is None:
            continue
        try:  # the file behind a link such as default.sf2, to say which sound it is
            yield check_soundfont(place.expanduser().resolve())
        except GenseqError:
            continue


def _bundled() -> Path | None:
    """The TimGM6mb SoundFont inside the pretty_midi package, where its wheel has it."""
    from importlib.util import find_spec

    spec = find_spec("pretty_midi")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).with_name("TimGM6mb.sf2")


def import_fluidsynth():
    """pyfluidsynth (which loads libfluidsynth), or None where the library is missing.

    Imported with Python's standard output held: when ``$CI`` is set, pyfluidsynth prints
    "'fluidsynth' was found at ..." there on import, and genseq's standard output carries its
    results (a tunebook, MIDI bytes, JSON rows). pretty_midi imports it too, so ``render``
    imports pretty_midi only after this."""
    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import fluidsynth
    except (ImportError, OSError):
        return None
    return fluidsynth


def player_missing() -> str | None:
    """Why no SoundFont can be played here (the library is missing), or None."""
    return NO_PLAYER if import_fluidsynth() is None else None


def choose(given: Path | None = None, program: int = 40) -> WavSound:
    """How this command's WAV files will sound, decided once, before anything is sampled.

    A SoundFont the user named that cannot be read, or cannot be played for want of the
    library, is an error, as is one without ``program``; a found one that FluidSynth cannot
    play is passed over for the next; a missing SoundFont or library otherwise falls back to
    the sine synthesiser with one note. The note names a SoundFont that was found (not one the
    user named) and its instrument."""
    named = given is not None or bool(os.environ.get(ENV))
    found = candidates(given)
    first = next(found, None)
    if first is None:
        return WavSound(None, f"note: no SoundFont found (give --soundfont or set {ENV}); {PLAIN}")
    if (why := player_missing()) is not None:
        if named:
            raise GenseqError(f"{first}: cannot play the SoundFont: {why}")
        return WavSound(None, f"note: {why}; {PLAIN}")
    for soundfont in (first, *found):
        try:
            instrument = _instrument(soundfont, program)
        except GenseqError:
            if named:
                raise
            continue
        note = f"note: the WAV files play {instrument} (program {program}) of {soundfont}"
        return WavSound(soundfont, "" if named else note)
    return WavSound(None, f"note: no playable SoundFont found (give --soundfont); {PLAIN}")


def _instrument(soundfont: Path, program: int) -> str:
    """The name of ``program`` in ``soundfont``; one ``GenseqError`` if FluidSynth cannot load
    the file or it lacks the program (FluidSynth would play silence)."""
    synth, sfid = synth_for(soundfont)  # what the header cannot show fails here, at the door
    instrument = synth.sfpreset_name(sfid, 0, program)
    if instrument is None:
        raise GenseqError(f"{soundfont}: the SoundFont has no General MIDI program {program}")
    return instrument


@cache
def synth_for(soundfont: Path, sample_rate: int = 22050):
    """A FluidSynth synthesiser with ``soundfont`` loaded, and the SoundFont's id, kept for the
    process (callers reset it, never delete it); one ``GenseqError`` if FluidSynth cannot read
    the file. FluidSynth's own complaints about a damaged file are kept off stderr: the error
    line says it."""
    fluidsynth = import_fluidsynth()
    if fluidsynth is None:
        raise GenseqError(f"{soundfont}: cannot play the SoundFont: {NO_PLAYER}")
    with _stderr_silenced():
        synth = fluidsynth.Synth(samplerate=float(sample_rate))
        sfid = synth.sfload(str(soundfont))
    if sfid < 0:
        synth.delete()
        raise GenseqError(f"{soundfont}: FluidSynth cannot load the SoundFont")
    return synth, sfid


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null (FluidSynth, a C library, writes there)."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


PLAIN = "the WAV files use a plain synthesizer"
