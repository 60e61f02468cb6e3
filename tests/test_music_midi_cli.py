"""MIDI note models from the command line: tokenize MIDI files, train a tiny melody model and
a tiny performance model, sample from MIDI and ABC primers to .mid/.wav/.png, evaluate per
note, and refuse flags that do not fit the model."""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path

import pytest
from testkit import run as run_genseq
from testkit import small, write_midi

pytestmark = pytest.mark.slow  # subprocesses and tiny training runs: about a minute
TUNE = "X:1\nT:Primer\nM:4/4\nL:1/8\nK:D\nDEFG A2d2 | f2e2 d4 |]\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("midi-cli")
    rng = random.Random(1)
    scale = [62, 64, 66, 67, 69, 71, 73, 74]
    for k in range(12):
        tune, now = [], 0.0
        for _ in range(32):
            length = rng.choice([0.25, 0.25, 0.5])
            tune.append((rng.choice(scale) + 12, now, now + length))
            now += length
        chords = [(p, 1.0 * i, 1.0 * i + 1.0) for i in range(int(now)) for p in (50, 54, 57)]
        parts = [{"name": "Tune", "notes": tune}, {"name": "Chords", "notes": chords}]
        write_midi(folder / f"t{k:02d}.mid", parts, velocity=80)
    (folder / "broken.mid").write_bytes(b"not midi at all")
    return folder


def run(*args: str) -> subprocess.CompletedProcess:
    return run_genseq(*args, text=True, timeout=300)


def tiny_train(data: Path, out: Path) -> Path:
    from genseq.data import open_data
    from genseq.train import Trainer

    cfg = small(
        hidden_size=32,
        num_layers=1,
        embed_size=16,
        seq_len=32,
        batch_size=8,
        max_steps=25,
        eval_every=25,
        seed=3,
    )
    Trainer(cfg, open_data(data), out).run()
    return out


@pytest.fixture(scope="module")
def melody_run(tmp_path_factory, corpus) -> Path:
    data = tmp_path_factory.mktemp("mel") / "data"
    result = run("tokenize", corpus, "-o", data, "--quiet", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["level"] == "midi-melody"  # auto for MIDI files
    assert summary["skipped"] == 1 and summary["skip_reasons"][0][0] == "not a readable MIDI file"
    return tiny_train(data, data.parent / "run")


@pytest.fixture(scope="module")
def performance_run(tmp_path_factory, corpus) -> Path:
    data = tmp_path_factory.mktemp("perf") / "data"
    result = run("tokenize", corpus, "-o", data, "--level", "midi-performance", "--quiet")
    assert result.returncode == 0, result.stderr
    return tiny_train(data, data.parent / "run")


def check_midi_file(path: Path, low: int = 0, high: int = 127) -> int:
    """The file loads in pretty_midi and mido, every note-on is closed, pitches in range."""
    import mido
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    notes = [n for inst in pm.instruments for n in inst.notes]
    assert all(n.end > n.start and low <= n.pitch <= high for n in notes)
    sounding: dict[tuple[int, int], int] = {}
    for msg in mido.merge_tracks(mido.MidiFile(str(path)).tracks):
        if msg.type == "note_on" and msg.velocity > 0:
            key = (msg.channel, msg.note)
            sounding[key] = sounding.get(key, 0) + 1
        elif msg.type in ("note_on", "note_off"):
            key = (msg.channel, msg.note)
            assert sounding.get(key, 0) > 0, "a note-off with no note on"
            sounding[key] -= 1
    assert not any(sounding.values()), "a note left hanging"
    return len(notes)


def test_melody_model_samples_valid_midi_from_a_midi_primer(melody_run, corpus, tmp_path):
    out, wav, png = tmp_path / "mid", tmp_path / "wav", tmp_path / "png"
    result = run(
        *["sample", melody_run, "--primer-midi", corpus / "t00.mid", "--num-steps", "48"],
        *["--num-samples", "3", "--seed", "7", "-o", out, "--wav", wav, "--png", png, "--json"],
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["finish_reason"] for r in rows] == ["eos"] * 3
    assert all(r["new_events"] == 48 and r["primer_events"] > 0 for r in rows)
    files = sorted(out.glob("*.mid"))
    assert [f.name for f in files] == ["sample_001.mid", "sample_002.mid", "sample_003.mid"]
    from genseq.checkpoint import load_checkpoint

    low, high = load_checkpoint(melody_run).tokenizer.pitch_range
    assert (low, high) == (74, 86)  # the corpus's range: no other pitch can be sampled
    for f in files:
        assert check_midi_file(f, low, high) > 32  # the primer's 32 notes and more
    assert len(list(wav.glob("*.wav"))) == 3 and len(list(png.glob("*.png"))) == 3
    # Without the mask the model may draw impossible events; the decoder still closes notes.
    loose = run("sample", melody_run, "--no-constrain", "--seed", "1", "-o", tmp_path / "loose")
    assert loose.returncode == 0, loose.stderr
    check_midi_file(tmp_path / "loose" / "sample_001.mid")
    # The same seed gives the same samples.
    again = run("sample", melody_run, "--num-steps", "16", "--seed", "7")
    twice = run("sample", melody_run, "--num-steps", "16", "--seed", "7")
    assert again.returncode == 0 and again.stdout == twice.stdout
    assert len(again.stdout.split()) == 16


def test_the_shown_seed_repeats_the_midi_samples(melody_run, cli):
    args = ["sample", str(melody_run), "--num-steps", "16", "--num-samples", "2"]
    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    (line,) = first.stderr.splitlines()
    seed = int(re.fullmatch(r"seed: (\d+)", line).group(1))
    again = cli(*args, "--seed", str(seed))
    assert again.exit_code == 0 and again.stderr == ""
    assert again.stdout == first.stdout and len(first.stdout.splitlines()) == 2


def test_performance_model_samples_valid_midi_from_an_abc_primer(performance_run, tmp_path):
    primer = tmp_path / "primer.abc"
    primer.write_text(TUNE)
    out = tmp_path / "mid"
    result = run(
        *["sample", performance_run, "--primer-abc", primer, "--seconds", "2"],
        *["--num-samples", "2", "--seed", "3", "-o", out, "--temperature", "1.3", "--top-k", "50"],
    )
    assert result.returncode == 0, result.stderr
    files = sorted(out.glob("*.mid"))
    assert len(files) == 2
    for f in files:
        assert check_midi_file(f) >= 8  # the primer's eight notes and more
    import pretty_midi

    ends = [pretty_midi.PrettyMIDI(str(f)).get_end_time() for f in files]
    # The primer lasts 4 s at 120 qpm; two more seconds follow, closing notes at most at the end.
    assert all(5.9 <= e <= 6.1 for e in ends)


def test_eval_reports_nats_per_note(melody_run, corpus):
    result = run("eval", melody_run, corpus / "t00.mid", corpus / "t01.mid", "--json")
    assert result.returncode == 0, result.stderr
    total = json.loads(result.stdout.splitlines()[-1])
    assert total["file"] == "TOTAL" and total["notes"] == 64
    assert 0 < total["nats_per_note"] < 50


def test_flags_that_do_not_fit_the_model_are_refused(melody_run, tiny_run, cli, tmp_path):
    text_flags = cli("sample", str(melody_run), "--prompt", "hello")
    assert text_flags.exit_code == 2 and "not for MIDI models" in text_flags.stderr
    both = cli("sample", str(melody_run), "--num-steps", "4", "--seconds", "2")
    assert both.exit_code == 2 and "not both" in both.stderr
    missing = cli("sample", str(melody_run), "--primer-midi", str(tmp_path / "nope.mid"))
    assert missing.exit_code == 1 and "error:" in missing.stderr
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"garbage")
    unreadable = cli("sample", str(melody_run), "--primer-midi", str(bad))
    assert unreadable.exit_code == 1 and "cannot be used as a primer" in unreadable.stderr
    midi_flags = cli("sample", str(tiny_run), "--num-steps", "10")
    assert midi_flags.exit_code == 2 and "only for MIDI models" in midi_flags.stderr
    sheet = cli("sample", str(melody_run), "--svg", str(tmp_path / "svg"))
    assert sheet.exit_code == 2 and "--svg: only for ABC models" in sheet.stderr
    assert not (tmp_path / "svg").exists()
    for result in (text_flags, both, missing, unreadable, midi_flags, sheet):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_train_reads_midi_files_directly(corpus, tmp_path):
    out = tmp_path / "run"
    result = run(
        *["train", corpus, "-o", out, "--level", "midi-melody", "--steps-per-quarter", "2"],
        *["--hidden-size", "16", "--embed-size", "8", "--seq-len", "16", "--batch-size", "4"],
        *["--max-steps", "4", "--device", "cpu", "--quiet"],
    )
    assert result.returncode == 0, result.stderr
    info = run("info", out)
    assert info.returncode == 0 and "1/8 note" in info.stdout


def test_music_stats_reads_midi_files_against_an_abc_reference(corpus, tmp_path, cli):
    reference = tmp_path / "ref.abc"
    reference.write_text(TUNE)
    result = run("music", "stats", corpus, "--reference", reference, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["documents"] == 13 and report["readable"] == 12
    assert report["unreadable_reasons"] == {"not a readable MIDI file": 1}
    assert report["pitch"]["min"] == 50 and report["pitch"]["max"] <= 86
    assert sum(report["histograms"]["pitch_class"]["counts"]) == report["notes"]
    distances = report["reference"]["distances"]
    assert set(distances) == {"pitch_class", "interval", "note_length", "pitch_range"}
    assert 0 <= distances["pitch_class"]["overlap"] <= 1
    table = cli("music", "stats", str(corpus / "t00.mid"))
    assert table.exit_code == 0 and "pitch range" in table.stdout
    refused = cli("music", "stats", str(corpus / "t00.mid"), "--transpose", "C")
    assert refused.exit_code == 2 and "error:" in refused.stderr


@pytest.mark.parametrize("fixture", ["melody_run", "performance_run"])
def test_top_k_one_equals_greedy_under_the_midi_constraint(fixture, request):
    from genseq.checkpoint import load_checkpoint
    from genseq.music.midi_sampling import sample_midi
    from genseq.sample import SamplingSettings

    ckpt = load_checkpoint(request.getfixturevalue(fixture) / "best")
    events = [
        [s.events for s in sample_midi(ckpt, [], settings, num_samples=3, steps=48, seed=seed)]
        for settings, seed in [
            (SamplingSettings(temperature=0), 1),
            (SamplingSettings(top_k=1, temperature=1.5), 2),
            (SamplingSettings(top_p=1e-9), 3),
        ]
    ]
    assert events[0] == events[1] == events[2]
