"""MIDI note models, library side: reading MIDI files, choosing the melody, the melody and
performance encodings (hypothesis round trips), the MIDI tokenizer levels in prepare, and
the sampling masks under random logits."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from testkit import write_midi

from genseq.music.midi_encoding import (
    StepNote,
    TimedNote,
    bin_velocity,
    decode_melody,
    decode_performance,
    encode_melody,
    encode_performance,
    fit_range,
    quantise_melody,
    quantise_performance,
    velocity_bin,
)
from genseq.music.midi_io import MidiError, read_midi, select_notes

NOTTINGHAM_MIDI = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "nottingham" / "MIDI"


def two_track_file(path: Path) -> Path:
    """A tune in eighths over a busier, lower bass line, with drums above both."""
    melody = [(72 + (i % 5), 0.25 * i, 0.25 * i + 0.25) for i in range(16)]
    bass = [(40 + (i % 3), 0.125 * i, 0.125 * i + 0.125) for i in range(32)]
    drums = [(81, 0.5 * i, 0.5 * i + 0.1) for i in range(8)]
    return write_midi(
        path,
        [
            {"name": "Bass", "program": 33, "notes": bass},
            {"name": "Melody", "program": 73, "notes": melody},
            {"name": "Kit", "drums": True, "notes": drums},
        ],
    )


# ---------------------------------------------------------------------------------------------
# Reading MIDI files and choosing what to learn


def test_melody_extraction_picks_the_highest_part_and_not_the_drums(tmp_path):
    score = read_midi(two_track_file(tmp_path / "two.mid").read_bytes())
    assert score.resolution == 220
    notes = select_notes(score, melody=True)
    assert [n.pitch for n in notes] == [72 + (i % 5) for i in range(16)]
    assert {score.parts[n.part].name for n in notes} == {"Melody"}
    # A named or numbered track, or a program, chooses instead (drums never count).
    bass = select_notes(score, melody=True, track="bass")
    assert [n.pitch for n in bass] == [40 + (i % 3) for i in range(32)]
    assert select_notes(score, melody=True, track="0") == bass
    assert select_notes(score, melody=True, program=33) == bass
    everything = select_notes(score, melody=False)
    assert len(everything) == 48 and max(n.pitch for n in everything) < 81
    with pytest.raises(MidiError, match="chosen track"):
        select_notes(score, melody=True, track="Strings")


def test_skyline_keeps_the_top_voice_of_chords(tmp_path):
    chords = [(60, 0.0, 1.0), (64, 0.0, 1.0), (67, 0.0, 1.0), (62, 1.0, 2.0), (71, 1.5, 2.0)]
    score = read_midi(write_midi(tmp_path / "c.mid", [{"name": "p", "notes": chords}]).read_bytes())
    notes = select_notes(score, melody=True)
    ticks = score.resolution
    assert [(n.pitch, n.start / ticks, n.end / ticks) for n in notes] == [
        (67, 0.0, 2.0),
        (62, 2.0, 3.0),  # cut short where the higher note starts
        (71, 3.0, 4.0),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty file"), (b"MThd\x00\x00\x00\x06garbage", "not a readable MIDI file")],
)
def test_corrupt_and_empty_files_raise_a_short_reason(data, reason):
    with pytest.raises(MidiError, match=reason):
        read_midi(data)


def test_a_file_without_notes_has_nothing_to_learn(tmp_path):
    score = read_midi(
        write_midi(tmp_path / "silent.mid", [{"name": "x", "notes": []}]).read_bytes()
    )
    with pytest.raises(MidiError, match="no notes"):
        select_notes(score, melody=True)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 127), st.floats(0, 8), st.floats(0.01, 2), st.integers(1, 127)),
        min_size=1,
        max_size=30,
        unique_by=lambda note: note[0],  # overlapping notes of one pitch pair ambiguously
    ),
    st.integers(0, 127),
    st.floats(40, 240),
)
def test_the_reader_agrees_with_pretty_midi(tmp_path_factory, raw, program, tempo):
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=program, name="Lead")
    inst.notes += [pretty_midi.Note(v, p, s, s + d) for p, s, d, v in raw]
    midi.instruments.append(inst)
    path = tmp_path_factory.mktemp("midi") / "x.mid"
    midi.write(str(path))
    again = pretty_midi.PrettyMIDI(str(path))
    expected = sorted(
        (again.time_to_tick(n.start), again.time_to_tick(n.end), n.pitch, n.velocity)
        for i in again.instruments
        for n in i.notes
    )
    score = read_midi(path.read_bytes())
    assert sorted((n.start, n.end, n.pitch, n.velocity) for n in score.notes) == expected
    assert {(p.program, p.name) for p in score.parts} == {(program, "Lead")}
    for n, m in zip(
        sorted(score.notes),
        sorted(
            again.instruments[0].notes,
            key=lambda m: (
                again.time_to_tick(m.start),
                again.time_to_tick(m.end),
                m.pitch,
                m.velocity,
            ),
        ),
        strict=True,
    ):
        assert score.seconds(n.start) == pytest.approx(m.start, abs=1e-6)


def test_the_reader_handles_running_status_and_skips_truncated_tracks():
    def track(body: bytes) -> bytes:
        return b"MTrk" + len(body).to_bytes(4, "big") + body

    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    header += (96).to_bytes(2, "big")
    # note on 60, then (running status) note on 64, note 60 off by velocity 0, 64 by 0x80,
    # a sysex and a pitch bend in between.
    body = bytes([0x00, 0x90, 60, 100, 0x10, 64, 90, 0x20, 60, 0, 0x00, 0xF0, 2, 1, 0xF7])
    body += bytes([0x00, 0xE0, 0, 64, 0x08, 0x80, 64, 0])
    score = read_midi(header + track(body + bytes([0x00, 0xFF, 0x2F, 0])))
    assert [(n.start, n.end, n.pitch, n.velocity) for n in score.notes] == [
        (0, 48, 60, 100),
        (16, 56, 64, 90),
    ]
    assert read_midi(header + track(bytes([0, 0xFF, 0x2F, 0]))).notes == []
    # A track whose stated length runs past the end of the file: skipped with a reason.
    cut = body + bytes([0x00, 0x90, 67])
    with pytest.raises(MidiError, match="not a readable MIDI file"):
        read_midi(header + b"MTrk" + (len(cut) + 40).to_bytes(4, "big") + cut)


def test_tempo_map_gives_seconds(tmp_path):
    path = write_midi(tmp_path / "slow.mid", [{"name": "x", "notes": [(60, 1.5, 3.0)]}], tempo=60)
    score = read_midi(path.read_bytes())
    (note,) = score.notes
    assert note.start == 1.5 * score.resolution
    assert score.seconds(note.start) == pytest.approx(1.5, abs=1e-6)
    assert score.seconds(note.end) == pytest.approx(3.0, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Encodings: round trips


@st.composite
def melodies(draw, low: int = 48, high: int = 84) -> list[StepNote]:
    notes, now = [], draw(st.integers(0, 8))
    for _ in range(draw(st.integers(1, 30))):
        duration = draw(st.integers(1, 16))
        notes.append(StepNote(now, now + duration, draw(st.integers(low, high))))
        now += duration + draw(st.integers(0, 4))
    return notes


@given(melodies())
def test_melody_round_trip_is_exact_on_the_grid(notes):
    events = encode_melody(notes)
    assert len(events) == notes[-1].end + 1 and events[-1] == "NOTE_OFF"
    assert decode_melody(events) == notes


@given(
    st.lists(
        st.tuples(st.floats(0, 20), st.floats(0.0, 3), st.integers(0, 127), st.integers(1, 127)),
        min_size=1,
        max_size=40,
    )
)
@settings(max_examples=150)
def test_performance_round_trip_keeps_every_note_within_the_quantisation(raw):
    notes = [TimedNote(s, s + d, p, v) for s, d, p, v in raw]
    decoded = decode_performance(encode_performance(notes))
    # Exactly the quantised notes come back (velocity as its bin's middle value)...
    expected = [(s, e, p, velocity_bin(v)) for s, e, p, v in quantise_performance(notes)]
    got = [
        (round(n.start * 100), round(n.end * 100), n.pitch, velocity_bin(n.velocity))
        for n in decoded
    ]
    assert got == expected
    # ...and each lies within 5 ms of a note played (notes of one pitch that overlapped
    # are cut where the next starts, so only starts are compared).
    for n in decoded:
        assert any(m.pitch == n.pitch and abs(m.start - n.start) <= 0.005 + 1e-9 for m in notes)
    assert all(n.end > n.start for n in decoded)


def test_velocity_bins_cover_the_midi_range():
    bins = {velocity_bin(v) for v in range(1, 128)}
    assert bins == set(range(1, 33))
    for v in range(1, 128):
        assert velocity_bin(bin_velocity(velocity_bin(v))) == velocity_bin(v)
        assert abs(bin_velocity(velocity_bin(v)) - v) <= 4


@given(
    st.lists(
        st.tuples(st.integers(0, 4000), st.integers(1, 2000), st.integers(0, 127)),
        min_size=1,
        max_size=30,
    )
)
def test_quantising_a_melody_moves_no_onset_more_than_half_a_step(raw):
    ticks_per_quarter, spq = 480, 4
    notes = [(s, s + d, p) for s, d, p in raw]
    grid = quantise_melody(notes, spq / ticks_per_quarter)
    step = ticks_per_quarter / spq
    for n in grid:
        assert any(abs(s - n.start * step) <= step / 2 and p == n.pitch for s, _e, p in notes)
    assert all(a.end <= b.start for a, b in zip(grid, grid[1:], strict=False))
    assert all(n.end > n.start for n in grid)


def test_out_of_range_melodies_move_by_octaves():
    low_tune = [StepNote(i, i + 1, p) for i, p in enumerate([24, 28, 31, 36, 47])]
    moved = fit_range(low_tune, 48, 84)
    assert [n.pitch for n in moved] == [48, 52, 55, 60, 71]  # all up two octaves
    wide = [StepNote(0, 1, 20), StepNote(1, 2, 60), StepNote(2, 3, 100)]
    assert [n.pitch for n in fit_range(wide, 48, 84)] == [56, 60, 76]  # outliers folded


# ---------------------------------------------------------------------------------------------
# The tokenizer levels in prepare


@pytest.fixture(scope="module")
def midi_corpus(tmp_path_factory) -> Path:
    """Twelve small two-track files, a corrupt one and an empty one."""
    folder = tmp_path_factory.mktemp("midi-corpus")
    rng = random.Random(0)
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    for k in range(12):
        melody, now = [], 0.0
        for _ in range(24):
            length = rng.choice([0.25, 0.25, 0.5])
            melody.append((rng.choice(scale) + 12, now, now + length))
            now += length
        bass = [(rng.choice(scale) - 24, 0.5 * i, 0.5 * i + 0.5) for i in range(int(now * 2))]
        write_midi(
            folder / f"tune{k:02d}.mid",
            [{"name": "Bass", "notes": bass}, {"name": "Tune", "notes": melody}],
        )
    (folder / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01garbage")
    (folder / "empty.midi").write_bytes(b"")
    return folder


@pytest.mark.parametrize("level", ["midi-melody", "midi-performance"])
def test_tokenize_midi_files_skips_unreadable_ones_with_reasons(
    tmp_path, midi_corpus, level, monkeypatch
):
    import genseq.corpus
    from genseq.corpus import resolve_sources
    from genseq.data import open_data
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    options = TokenizeOptions(level="auto" if level == "midi-melody" else level)
    monkeypatch.setattr(genseq.corpus, "sha256_file", None)  # hashed as read, never read again
    summary = tokenize_corpus(resolve_sources([str(midi_corpus)]), tmp_path / "d", options)
    assert summary.level == level
    assert summary.documents == 14 and summary.skipped == 2
    reasons = {reason for reason, _n, _example in summary.skip_reasons}
    assert reasons == {"not a readable MIDI file", "empty file"}
    assert summary.split == "document" and summary.unknown_tokens == 0
    data = open_data(tmp_path / "d")
    for source in data.meta["sources"]:  # hashed as the first pass read each file whole
        digest = hashlib.sha256((midi_corpus / source["name"]).read_bytes()).hexdigest()
        assert source["sha256"] == digest
    tok = data.tokenizer()
    assert tok.level == level
    notes = tok.note_count(data.train) + tok.note_count(data.val)
    if level == "midi-melody":
        assert notes == 12 * 24  # the Tune track's 24 notes in each file
    else:
        assert notes > 12 * 24  # the bass too


def test_the_melody_range_is_the_corpus_range_unless_given(tmp_path, midi_corpus):
    from genseq.corpus import resolve_sources
    from genseq.data import open_data
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    corpus = resolve_sources([str(midi_corpus)])
    tokenize_corpus(corpus, tmp_path / "a", TokenizeOptions(level="midi-melody"))
    tok = open_data(tmp_path / "a").tokenizer()
    assert tok.pitch_range == (72, 84)  # the tunes' scale, an octave up
    options = TokenizeOptions(level="midi-melody", augment_keys=3)
    tokenize_corpus(corpus, tmp_path / "b", options)
    assert open_data(tmp_path / "b").tokenizer().pitch_range == (71, 86)  # +1, -1, +2


def test_melody_options_are_saved_in_the_vocabulary(tmp_path, midi_corpus):
    from genseq.corpus import resolve_sources
    from genseq.data import open_data
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    options = TokenizeOptions(level="midi-melody", steps_per_quarter=8, pitch_range="36-96")
    tokenize_corpus(resolve_sources([str(midi_corpus)]), tmp_path / "d", options)
    tok = open_data(tmp_path / "d").tokenizer()
    assert tok.options.steps_per_quarter == 8 and tok.options.pitch_range == (36, 96)
    assert tok.vocab_size == 2 + 2 + 61 + 1
    marker = tok.token_to_id("<steps_per_quarter=8>")
    assert marker in tok.never_generate and tok.unk_id in tok.never_generate
    assert "8 steps" not in tok.describe() and "1/32 note" in tok.describe()


def test_midi_track_option_chooses_the_bass(tmp_path, midi_corpus):
    from genseq.corpus import resolve_sources
    from genseq.data import open_data
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    options = TokenizeOptions(level="midi-melody", midi_track="Bass", pitch_range="24-60")
    tokenize_corpus(resolve_sources([str(midi_corpus)]), tmp_path / "d", options)
    data = open_data(tmp_path / "d")
    tokens = set(data.tokenizer().tokens_of(sorted(set(data.train.tolist()))))
    pitches = {int(t[8:]) for t in tokens if t.startswith("NOTE_ON_")}
    assert pitches and max(pitches) <= 48  # the bass line, not the tune above it


def test_abc_tunes_feed_the_note_models_with_augmented_copies_in_training_only(tmp_path):
    from genseq.tokenization import new_tokenizer

    tune = "X:1\nT:t\nM:4/4\nL:1/8\nK:G\n|: GABc d2B2 :| g4 d4 |]\n"
    tok = new_tokenizer("midi-melody", augment_keys=2)
    tok.fit(iter([tune]))
    plain = tok.encode_document(tune)
    augmented = tok.encode_training_document(tune)
    assert len(augmented) == 3 and (augmented[0] == plain).all()  # the tune, two copies
    assert [int(a[0]) - int(plain[0]) for a in augmented] == [0, 1, -1]  # first NOTE_ON moved
    events = tok.tokens_of(plain)
    assert events[:3] == ["NOTE_ON_67", "NO_EVENT", "NOTE_ON_69"]  # G then A, in eighths
    notes = decode_melody(events)
    assert len(notes) == 2 * 6 + 2  # the repeat is played twice
    perf = new_tokenizer("midi-performance")
    perf.fit(iter([tune]))
    assert perf.note_count(perf.encode_document(tune)) == 14


def test_text_levels_refuse_midi_and_midi_options_need_a_midi_level(tmp_path, midi_corpus):
    from genseq.corpus import resolve_sources
    from genseq.errors import GenseqError, UsageError
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    corpus = resolve_sources([str(midi_corpus)])
    with pytest.raises(GenseqError, match="is a MIDI file"):
        tokenize_corpus(corpus, tmp_path / "a", TokenizeOptions(level="char"))
    with pytest.raises(UsageError, match="need --level midi-melody"):
        tokenize_corpus(
            corpus, tmp_path / "b", TokenizeOptions(level="midi-performance", steps_per_quarter=2)
        )
    with pytest.raises(UsageError, match="need a midi level"):
        TokenizeOptions(level="abc", midi_program=3).validate()
    with pytest.raises(UsageError, match="--pitch-range"):
        TokenizeOptions(level="midi-melody", pitch_range="80-70").validate()
    with pytest.raises(UsageError, match="--augment-keys N adds transposed copies"):
        TokenizeOptions(level="midi-melody", transpose="D").validate()


def test_nottingham_midi_reads_into_melodies():
    folder = NOTTINGHAM_MIDI / "melody"
    if not folder.is_dir():
        pytest.skip(f"the Nottingham MIDI files are not present at {folder}")
    from genseq.tokenization import new_tokenizer

    tok = new_tokenizer("midi-melody")
    tok.fit(iter([]))
    files = sorted(folder.glob("*.mid"))[:60]
    for path in files:
        ids = tok.encode_document(path.read_bytes())
        events = tok.tokens_of(ids)
        assert events[-1] == "NOTE_OFF" and tok.unk_id not in ids
        assert tok.note_count(ids) > 10


# ---------------------------------------------------------------------------------------------
# The sampling masks under random logits


class _Vocab:
    """The parts of a tokenizer that the constraints read."""

    def __init__(self, level: str) -> None:
        from genseq.tokenization import new_tokenizer

        self.tok = new_tokenizer(level)
        self.tok.fit(iter([]))


@pytest.mark.parametrize("seed", range(6))
def test_melody_mask_never_allows_a_note_off_without_a_note(seed):
    from genseq.music.midi_constraint import MelodyConstraint

    tok = _Vocab("midi-melody").tok
    gen = torch.Generator().manual_seed(seed)
    primer = ["NO_EVENT", "NOTE_ON_60", "NO_EVENT"] if seed % 2 else []
    ids = [tok.eos_id, *tok.token_ids(primer).tolist()]
    steps, batch = 40, 8
    c = MelodyConstraint(tok, ids, steps)
    c.start(batch, torch.device("cpu"))
    sounding = [bool(primer)] * batch
    off = tok.token_to_id("NOTE_OFF")
    for step in range(steps + 1):
        allowed = c.allowed()
        logits = torch.randn(batch, tok.vocab_size, generator=gen) * 5
        logits[:, off] += 3  # the model likes note-offs
        tokens = logits.masked_fill(~allowed, float("-inf")).argmax(-1)
        for row, t in enumerate(tokens.tolist()):
            token = tok.id_to_token(t)
            assert allowed[row].sum() >= 1
            if step == steps:
                assert t == tok.eos_id  # exactly the length asked for
                continue
            assert t not in tok.never_generate and t != tok.eos_id
            assert token != "NOTE_OFF" or sounding[row]
            sounding[row] = token.startswith("NOTE_ON_") or (sounding[row] and token == "NO_EVENT")
        c.advance(tokens)


@pytest.mark.parametrize("seed", range(4))
def test_performance_mask_allows_only_possible_events_and_ends_on_time(seed):
    from genseq.music.midi_constraint import PerformanceConstraint

    tok = _Vocab("midi-performance").tok
    gen = torch.Generator().manual_seed(seed)
    primer = ["VELOCITY_20", "NOTE_ON_60", "TIME_SHIFT_10"]
    ids = [tok.eos_id, *tok.token_ids(primer).tolist()]
    steps, batch = 300, 4
    c = PerformanceConstraint(tok, ids, steps)
    c.start(batch, torch.device("cpu"))
    sounding = [{60: 0} for _ in range(batch)]
    now = [10] * batch
    done = [False] * batch
    for _ in range(4 * steps):
        allowed = c.allowed()
        logits = torch.randn(batch, tok.vocab_size, generator=gen) * 4
        tokens = logits.masked_fill(~allowed, float("-inf")).argmax(-1)
        for row, t in enumerate(tokens.tolist()):
            if done[row]:
                continue
            token = tok.id_to_token(t)
            if token == "<eos>":
                assert now[row] == 10 + steps
                done[row] = True
            elif token.startswith("NOTE_OFF_"):
                p = int(token[9:])
                assert p in sounding[row] and sounding[row][p] < now[row]
                del sounding[row][p]
            elif token.startswith("NOTE_ON_"):
                p = int(token[8:])
                assert p not in sounding[row]
                sounding[row][p] = now[row]
            elif token.startswith("TIME_SHIFT_"):
                now[row] += int(token[11:])
                assert now[row] <= 10 + steps
            else:
                assert token.startswith("VELOCITY_")
        c.advance(tokens)
        if all(done):
            break
    assert all(done)
