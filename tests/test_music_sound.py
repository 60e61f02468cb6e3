"""Real sound: WAV files through a General MIDI SoundFont (or sine tones without one) with
their notes where the tune puts them, accents on the beats a player leans on, and a SoundFont
that cannot be played refused at the door with one line."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
from testkit import one_error_line

from genseq.errors import GenseqError
from genseq.music import soundfont
from genseq.music.abc_lexer import tokenize_tune
from genseq.music.notes import tune_notes
from genseq.music.render import (
    DOWNBEAT_VELOCITY,
    PLAIN_VELOCITY,
    SECONDARY_VELOCITY,
    to_pretty_midi,
    write_midi,
    write_wav,
)

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "folk-tunes"

# Quarters and eighths on changing pitches, a held note at the end: 15 onsets in 8 s at 120.
TUNE = "X:1\nT:Onsets\nM:4/4\nL:1/8\nK:D\nD2 F2 A2 d2 | c2 e2 dB AF | E2 G2 B2 e2 | d8 |]\n"


def _installed_soundfont() -> Path:
    """A SoundFont FluidSynth can play here, or a skip that says what is missing: the
    TimGM6mb that pretty_midi ships where its wheel has it, so that what the tests hear
    (onsets, overtones) does not change with the SoundFonts a machine happens to have."""
    if (why := soundfont.player_missing()) is not None:
        pytest.skip(f"no SoundFont player: {why}")
    bundled = soundfont._bundled()
    if bundled is not None and bundled.exists():
        return bundled.resolve()
    found = soundfont.resolve_soundfont(None)
    if found is None:
        pytest.skip("no General MIDI SoundFont installed (apt-get install timgm6mb-soundfont)")
    return found


@pytest.fixture
def no_soundfont(monkeypatch):
    """A machine with no SoundFont anywhere."""
    monkeypatch.delenv(soundfont.ENV, raising=False)
    monkeypatch.setattr(soundfont, "SEARCH_PLACES", ())
    monkeypatch.setattr(soundfont, "_bundled", lambda: None)


def read_wav(path: Path):
    import numpy as np

    with wave.open(str(path), "rb") as f:
        rate = f.getframerate()
        audio = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2") / 32768.0
    return audio, rate


def detect_onsets(audio, rate: int) -> list[float]:
    """Note onsets in seconds by spectral flux: the rise of log-magnitude spectra from one
    frame to the next, summed over frequency, peak-picked above 30% of its largest value. A
    new note raises the energy at its own partials, so a change of pitch shows even where the
    level does not; the log's gentle compression (10x) keeps a sample's loop point and the
    reverb's tail (under 25% of a note's flux in TimGM6mb's violin) below the threshold."""
    import numpy as np

    size, hop = 1024, 128
    padded = np.concatenate([np.zeros(size), audio])  # so that a note at 0 s rises too
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop] * np.hanning(size)
    spectra = np.log1p(10 * np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(spectra, axis=0), 0).sum(axis=1)
    threshold, reach = 0.3 * flux.max(), round(0.06 * rate / hop)  # peaks 60 ms apart or more
    peaks = [
        k
        for k in range(len(flux))
        if flux[k] >= threshold and flux[k] == flux[max(0, k - reach) : k + reach + 1].max()
    ]
    # diff k compares frames k and k + 1: the rise is steepest as frame k + 1's centre passes
    return [((k + 1) * hop + size / 2 - size) / rate for k in peaks]


def expected_onsets(tune, tempo: float) -> list[float]:
    midi = to_pretty_midi(tune, tempo_qpm=tempo)
    return sorted({round(n.start, 6) for n in midi.instruments[0].notes})


def assert_onsets_match(found: list[float], expected: list[float], tolerance: float = 0.04):
    """Every note start is heard within ``tolerance`` seconds, and nothing else is."""
    missing = [t for t in expected if not any(abs(t - f) <= tolerance for f in found)]
    extra = [f for f in found if not any(abs(t - f) <= tolerance for t in expected)]
    assert not missing and not extra, (missing, extra, found)


@pytest.mark.parametrize("path", ["soundfont", "sine"])
def test_the_wav_sounds_each_note_where_the_tune_starts_it(tmp_path, path):
    tune = tune_notes(tokenize_tune(TUNE))
    font = _installed_soundfont() if path == "soundfont" else None
    wav = write_wav(tune, tmp_path / "t.wav", tempo_qpm=120, program=40, soundfont=font)
    audio, rate = read_wav(wav)
    expected = expected_onsets(tune, 120)
    assert len(expected) == 15 and expected[-1] == pytest.approx(6.0)
    assert_onsets_match(detect_onsets(audio, rate), expected)


def test_a_soundfont_violin_has_overtones_that_sine_tones_lack(tmp_path):
    """What makes it sound like an instrument: energy above 1 kHz for a tune whose notes are
    all below 700 Hz (sine tones have none there)."""
    import numpy as np

    tune = tune_notes(tokenize_tune(TUNE))
    assert max(n.pitch for n in tune.notes) <= 77  # F5, 698 Hz

    def share_above_1khz(font: Path | None) -> float:
        path = write_wav(tune, tmp_path / "t.wav", 120, program=40, soundfont=font)
        audio, rate = read_wav(path)
        power = np.abs(np.fft.rfft(audio)) ** 2
        return power[np.fft.rfftfreq(len(audio), 1 / rate) > 1000].sum() / power.sum()

    real, sine = share_above_1khz(_installed_soundfont()), share_above_1khz(None)
    assert real > 0.01 > 1e-4 > sine, (real, sine)


@pytest.mark.parametrize(
    ("abc", "velocities"),
    [
        # 4/4: beat 1 strongest, beat 3 a little, beats 2 and 4 and the offbeats plain
        ("M:4/4 K:Dmaj d 2 e 2 f 2 g 2 | a b c' d' e' 4 |]", "D P S P D P P P S"),
        # 6/8 with a pickup: the pickup is plain, then beats 1 and 4 of each bar
        ("M:6/8 K:Dmaj A | d 2 e f 2 g | a 3 f 3 |]", "P D P S P D S"),
        # 3/4: only the bar's first beat
        ("M:3/4 K:Dmaj d 2 e 2 f 2 | a 6 |]", "D P P D"),
        # 9/8: the first beat, then the second and third dotted beats
        ("M:9/8 K:Dmaj d 3 e 3 f 3 | a 9 |]", "D S S D"),
        # no meter: no accents
        ("K:Dmaj d 2 e 2 f 2 |]", "P P P"),
        # 2/4 then 4/4: each bar measured from its own bar line, so the 4/4 bar's beat 3 is
        # no downbeat (by 2/4 arithmetic it was one)
        ("M:2/4 K:Dmaj d 2 e 2 | M:4/4 d 2 e 2 f 2 g 2 | a 8 |]", "D S D P P P D"),
    ],
)
def test_midi_velocities_accent_the_downbeats(tmp_path, abc, velocities):
    import pretty_midi

    level = {"D": DOWNBEAT_VELOCITY, "S": SECONDARY_VELOCITY, "P": PLAIN_VELOCITY}
    path = write_midi(tune_notes(abc.split()), tmp_path / "t.mid", tempo_qpm=120, program=40)
    notes = pretty_midi.PrettyMIDI(str(path)).instruments[0].notes
    assert [n.velocity for n in notes] == [level[v] for v in velocities.split()]
    assert DOWNBEAT_VELOCITY > SECONDARY_VELOCITY > PLAIN_VELOCITY


def test_a_soundfont_plays_louder_on_the_downbeat(tmp_path):
    """The accent reaches the sound: the bar's first note is louder than the same note off
    the beat."""
    import numpy as np

    font = _installed_soundfont()
    tune = tune_notes("M:2/4 K:Dmaj A 2 A 2 | A 2 A 2 |]".split())
    audio, rate = read_wav(write_wav(tune, tmp_path / "t.wav", 120, program=40, soundfont=font))

    def level(start: float) -> float:  # the RMS of the note's first 150 ms
        window = audio[round(start * rate) : round((start + 0.15) * rate)]
        return float(np.sqrt(np.mean(window**2)))

    # 2/4 at 120: notes at 0, 0.5 (beat 2: secondary), 1.0 (downbeat), 1.5
    assert level(1.0) > level(1.5) * 1.1


def test_a_performance_wav_keeps_the_performers_dynamics(tmp_path):
    """A MIDI performance model's WAV plays each note at its own velocity, as its .mid does."""
    import numpy as np

    from genseq.music.midi_encoding import TimedNote
    from genseq.music.render import write_performance_wav

    font = _installed_soundfont()
    notes = [TimedNote(0.0, 0.4, 67, 30), TimedNote(0.5, 0.9, 67, 120)]
    audio, rate = read_wav(write_performance_wav(notes, tmp_path / "p.wav", soundfont=font))

    def level(start: float) -> float:
        window = audio[round(start * rate) : round((start + 0.3) * rate)]
        return float(np.sqrt(np.mean(window**2)))

    assert level(0.5) > 3 * level(0.0)  # 4x the velocity: louder by far


def test_resolution_order_given_then_variable_then_places(tmp_path, monkeypatch):
    sf2 = _installed_soundfont()
    first, second = tmp_path / "a.sf2", tmp_path / "b.sf2"
    for copy in (first, second):
        copy.symlink_to(sf2)
    monkeypatch.setattr(soundfont, "SEARCH_PLACES", (tmp_path / "none.sf2", second))
    monkeypatch.delenv(soundfont.ENV, raising=False)
    assert soundfont.resolve_soundfont(None) == sf2.resolve()  # the found link, resolved
    monkeypatch.setenv(soundfont.ENV, str(first))
    assert soundfont.resolve_soundfont(None) == first
    assert soundfont.resolve_soundfont(second) == second
    monkeypatch.setenv(soundfont.ENV, "")  # set but empty: as if unset
    assert soundfont.resolve_soundfont(None) == sf2.resolve()


def test_a_broken_file_in_a_system_place_is_passed_over(tmp_path, monkeypatch, no_soundfont):
    broken = tmp_path / "default.sf2"
    broken.write_bytes(b"RIFF\x00\x00\x10\x00sfbk")  # a header promising a megabyte
    monkeypatch.setattr(soundfont, "SEARCH_PLACES", (broken,))
    assert soundfont.resolve_soundfont(None) is None
    sound = soundfont.choose(None)
    assert sound.soundfont is None and "no SoundFont found" in sound.note


def _damaged_soundfont(path: Path) -> Path:
    """A file with a whole SoundFont header and a body FluidSynth cannot parse: it passes the
    header check, so only FluidSynth's load finds it out (and FluidSynth prints pages)."""
    body = bytes(range(256)) * 8
    path.write_bytes(b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"sfbk" + body)
    return path


def test_a_damaged_found_soundfont_is_passed_over_for_the_next(tmp_path, monkeypatch):
    good = _installed_soundfont()
    damaged = _damaged_soundfont(tmp_path / "default.sf2")
    monkeypatch.delenv(soundfont.ENV, raising=False)
    monkeypatch.setattr(soundfont, "SEARCH_PLACES", (damaged, good))
    assert soundfont.choose(None).soundfont == good.resolve()


def test_a_damaged_named_soundfont_is_one_line_without_fluidsynths_own(tmp_path):
    """FluidSynth writes its complaints to file descriptor 2 itself: the command, run as a
    user runs it, must still print one line."""
    from testkit import run

    _installed_soundfont()
    damaged = _damaged_soundfont(tmp_path / "bad.sf2")
    out = tmp_path / "out"
    result = run("sample", SHIPPED, "--seed", "1", "--wav", out, "--soundfont", damaged)
    assert result.returncode == 1
    assert result.stderr.decode() == f"error: {damaged}: FluidSynth cannot load the SoundFont\n"
    assert not out.exists()


def test_the_soundfont_is_loaded_once_for_many_tunes(tmp_path, monkeypatch):
    """Loading FluidR3_GM (141 MB) for each tune would cost more than rendering it."""
    font = _installed_soundfont()
    soundfont.synth_for.cache_clear()
    tune = tune_notes(tokenize_tune(TUNE))
    for i in range(3):
        write_wav(tune, tmp_path / f"{i}.wav", 120, program=40, soundfont=font)
    assert soundfont.synth_for.cache_info().misses == 1


def _bad_soundfonts(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "notes.txt"
    text.write_text("not a SoundFont\n")
    real = _installed_soundfont().read_bytes()
    truncated = tmp_path / "half.sf2"
    truncated.write_bytes(real[: len(real) // 2])
    return {"text": text, "missing": tmp_path / "missing.sf2", "truncated": truncated}


@pytest.mark.parametrize("kind", ["text", "missing", "truncated"])
def test_a_bad_soundfont_is_one_error_before_anything_is_sampled(tmp_path, cli, kind):
    bad = _bad_soundfonts(tmp_path)[kind]
    out = tmp_path / "out"
    result = cli("sample", SHIPPED, "--seed", "1", "--wav", out, "--soundfont", bad)
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert str(bad) in line and "seed" not in result.stderr
    assert not out.exists() and result.stdout == ""


def test_a_bad_soundfont_in_the_variable_is_an_error_too(tmp_path, cli, monkeypatch):
    bad = _bad_soundfonts(tmp_path)["truncated"]
    monkeypatch.setenv(soundfont.ENV, str(bad))
    result = cli("sample", SHIPPED, "--seed", "1", "--wav", tmp_path / "out")
    assert result.exit_code == 1
    assert one_error_line(result.stderr).startswith(f"error: ${soundfont.ENV} {bad}: truncated")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("program", ["-1", "128"])
def test_a_program_outside_general_midi_is_a_usage_error(tmp_path, cli, program):
    result = cli("sample", SHIPPED, "--wav", tmp_path / "out", "--program", program)
    assert result.exit_code == 2
    assert "0-127" in one_error_line(result.stderr)
    assert not (tmp_path / "out").exists()


def test_a_soundfont_without_wav_is_a_usage_error(tmp_path, cli):
    result = cli("sample", SHIPPED, "--soundfont", tmp_path / "x.sf2")
    assert result.exit_code == 2 and "--wav" in one_error_line(result.stderr)


def test_without_a_soundfont_the_fallback_is_said_once(tmp_path, cli, no_soundfont):
    out = tmp_path / "wav"
    result = cli("sample", SHIPPED, "--seed", "2", "--num-samples", "3", "--wav", out)
    assert result.exit_code == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "SoundFont" in line]
    assert said == [
        "note: no SoundFont found (give --soundfont or set GENSEQ_SOUNDFONT); "
        "the WAV files use a plain synthesizer"
    ]
    assert len(list(out.glob("*.wav"))) == 3


def instrument_73(font: Path) -> str:
    """The SoundFont's own name for General MIDI program 73, the flute."""
    synth, sfid = soundfont.synth_for(font)
    return synth.sfpreset_name(sfid, 0, 73)


def test_a_found_soundfont_is_named_once_and_played(tmp_path, cli, monkeypatch):
    _installed_soundfont()
    monkeypatch.delenv(soundfont.ENV, raising=False)
    font = soundfont.resolve_soundfont(None)  # the first found, whichever this machine has
    out = tmp_path / "wav"
    result = cli(
        *["sample", SHIPPED, "--seed", "2", "--num-samples", "2", "--wav", out],
        *["--program", "73", "-o", tmp_path / "book.abc"],
    )
    assert result.exit_code == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "program" in line]
    assert said == [f"note: the WAV files play {instrument_73(font)} (program 73) of {font}"]
    assert len(list(out.glob("*.wav"))) == 2


def test_without_fluidsynth_a_named_soundfont_is_an_error_and_a_found_one_falls_back(
    tmp_path, monkeypatch
):
    """The library is the one thing pip cannot install: a machine without it still writes
    WAV files, in sine tones, unless the user asked for a SoundFont by name."""
    font = _installed_soundfont()
    monkeypatch.setattr(soundfont, "player_missing", lambda: soundfont.NO_PLAYER)
    monkeypatch.delenv(soundfont.ENV, raising=False)
    with pytest.raises(GenseqError, match="libfluidsynth3"):
        soundfont.choose(font)
    monkeypatch.setenv(soundfont.ENV, str(font))
    with pytest.raises(GenseqError, match="cannot play the SoundFont"):
        soundfont.choose(None)
    monkeypatch.delenv(soundfont.ENV)
    sound = soundfont.choose(None)
    assert sound.soundfont is None
    assert sound.note.startswith("note: the FluidSynth library is not installed")
    assert sound.note.endswith("; the WAV files use a plain synthesizer")


@pytest.mark.parametrize("ci", ["true", ""])
def test_standard_output_holds_only_the_tunes_whatever_ci_says(tmp_path, ci):
    """pyfluidsynth prints where it found its library on standard output when $CI is set
    (as in a user's own CI job); genseq's standard output must hold the tunebook alone."""
    import subprocess

    from testkit import GENSEQ, genseq_env

    _installed_soundfont()
    args = ["sample", SHIPPED, "--seed", "1", "--wav", tmp_path / "w", "--midi", tmp_path / "m"]
    result = subprocess.run(
        [GENSEQ, *map(str, args)],
        capture_output=True,
        text=True,
        env={**genseq_env(), "CI": ci},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("X:1\n") and "fluidsynth" not in result.stdout
