"""Rhythm (R:) and tempo (Q:) fields: read and normalised, kept as tokens, written back,
`sample --rhythm`, and models from before these tokens existed loading as they did."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import pytest
from testkit import one_error_line, run, small

from genseq.music.abc_lexer import LexOptions, split_tunebook, tokenize_tune
from genseq.music.abc_writer import tune_text
from genseq.music.header import normalise_rhythm, tempo_qpm

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "folk-tunes"
# The model genseq shipped before R: and Q: were tokens: it must sample as it did.
BEFORE_RHYTHM = Path(__file__).resolve().parent / "data" / "folk-tunes-schema1"
EIGHTH, QUARTER, SIXTEENTH = Fraction(1, 8), Fraction(1, 4), Fraction(1, 16)


@pytest.mark.parametrize(
    ("value", "rhythm"),
    [  # R: values as the folk corpora (O'Neill's, Ryan's, Aird's, miscFolk) write them
        ("reel", "reel"),
        (" reel", "reel"),
        ("Reel", "reel"),
        ("REEL", "reel"),
        ("jig", "jig"),
        ("double jig", "jig"),
        ("Double Jig", "jig"),
        ("single jig", "jig"),
        ("slipjig", "slip-jig"),
        ("slip jig", "slip-jig"),
        ("Slip Jig", "slip-jig"),
        ("slip-jig", "slip-jig"),
        ("hornpipe  % played slowly", "hornpipe"),
        (" strathspey", "strathspey"),
        ("highland fling", "fling"),
        (" fling", "fling"),
        ("clog", "clog"),
        ("air", "air"),
        ("Waltz", "waltz"),
        ("set dance", "set-dance"),
        (" walkaround", None),  # outside the set: dropped
        ("gavotte", None),
        ("", None),
    ],
)
def test_rhythm_values_are_normalised_to_one_name(value, rhythm):
    assert normalise_rhythm(value) == rhythm


@pytest.mark.parametrize(
    ("value", "unit", "qpm"),
    [
        ("1/4=120", EIGHTH, 120),
        ("3/8=120", EIGHTH, 180),  # a jig: 120 dotted quarters
        ("1/2=104", EIGHTH, 208),
        ("1/4 =50", EIGHTH, 50),
        ('"Allegro" 1/4=120', EIGHTH, 120),
        ('1/4=80 "Slow"', EIGHTH, 80),
        ("1/4 3/8=40", EIGHTH, 100),  # beats summed: 5/8 of a whole note, 40 a minute
        ("120", EIGHTH, 60),  # ABC 2.1's old form counts unit notes (L:), here eighths
        ("120", QUARTER, 120),
        ("60", SIXTEENTH, None),  # 15 quarter notes a minute: under 20 is damage
        ("C2=120", EIGHTH, 120),  # old form: two unit notes
        ('"Slowly"', EIGHTH, None),  # words alone name no tempo
        ("1/0=120", EIGHTH, None),
        ("fast", EIGHTH, None),
        ("1/" + "9" * 5000 + "=120", EIGHTH, None),  # damage: dropped, never an error
    ],
)
def test_tempo_fields_read_in_quarter_notes_per_minute(value, unit, qpm):
    assert tempo_qpm(value, unit) == qpm


JIG = "X:1\nT:Jig\nR:Double Jig\nM:6/8\nL:1/8\nQ:3/8=120\nK:G\n|:GAB cBA|d3 d2B:|\n"


def test_the_header_keeps_rhythm_first_and_tempo_after_the_key():
    assert tokenize_tune(JIG)[:5] == ["R:jig", "M:6/8", "K:Gmaj", "Q:180", "|:"]
    plain = tokenize_tune(JIG.replace("R:Double Jig\n", "").replace("Q:3/8=120\n", ""))
    assert tokenize_tune(JIG, LexOptions(rhythm=False, tempo=False)) == plain
    assert tokenize_tune(JIG.replace("Double Jig", "walkaround"))[0] == "M:6/8"
    assert tokenize_tune(JIG.replace("Q:3/8=120", 'Q:"Lively"'))[2:4] == ["K:Gmaj", "|:"]
    # fields in the body are not the tune's header: dropped as before
    assert tokenize_tune(JIG + "R:reel\nQ:1/4=60\nGAB cBA|]\n").count("R:jig") == 1
    assert tokenize_tune(JIG, LexOptions(normalise_unit=False))[:6] == [
        *("R:jig", "M:6/8", "K:Gmaj", "Q:180", "L:1/8", "|:")
    ]


def test_the_writer_writes_rhythm_and_tempo_fields():
    tokens = tokenize_tune(JIG.replace("Double Jig", "slipjig").replace("6/8", "9/8"))
    header = tune_text(tokens, 2, "Slip").splitlines()[:7]
    assert header == ["X:2", "T:Slip", "R:slip jig", "M:9/8", "L:1/8", "Q:1/4=180", "K:G"]
    assert "Q:1/4=96" in tune_text(tokens, 2, "Slip", tempo=96)  # --tempo wins
    assert tokenize_tune(tune_text(tokens)) == tokens


@pytest.mark.skipif(
    not all(map(shutil.which, ("abc2midi", "abcm2ps"))),
    reason="abc2midi and abcm2ps (Debian packages abcmidi, abcm2ps) are not installed",
)
@pytest.mark.parametrize(
    ("rhythm", "meter", "bar"),
    [
        ("reel", "4/4", "d2fd adfd"),
        ("hornpipe", "2/4", "dfaf"),
        ("jig", "6/8", "dfa afd"),
        ("slip jig", "9/8", "dfa afd fed"),
        ("strathspey", "4/4", "d>f a>f d2 f2"),
    ],
)
def test_written_rhythm_and_tempo_pass_the_reference_programs(rhythm, meter, bar, tmp_path):
    from test_music_abc import reference_messages

    text = f"X:1\nT:t\nR:{rhythm}\nM:{meter}\nL:1/8\nQ:1/4=100\nK:D\n|:{bar}:|\n"
    tokens = tokenize_tune(text)
    assert tokens[0].startswith("R:") and "Q:100" in tokens
    written = tune_text(tokens)
    assert f"R:{rhythm}\n" in written and "Q:1/4=100\n" in written
    assert reference_messages(written, tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Models: one trained on tunes with R: and Q: fields, and the shipped one trained before them


def _tune(n: int, rhythm: str, meter: str, tempo: str, key: str, bars: list[str]) -> str:
    return f"X:{n}\nT:{rhythm} {n}\nR:{rhythm}\nM:{meter}\nL:1/8\nQ:{tempo}\nK:{key}\n" + (
        "|:" + "|".join(bars) + ":|\n"
    )


def rhythm_corpus() -> str:
    """Jigs in 6/8 and reels in 4/4, each with its own R: spelling and tempo."""
    jig = ["dfa afd", "gbg faf", "edc BAG", "FAd d3"]
    reel = ["d2fd adfd", "gfed cBAG", "FGAB cdef", "d2f2 d4"]
    tunes = []
    for n in range(24):
        shift = n % 4
        if n % 2:
            tunes.append(_tune(n, "Jig", "6/8", "3/8=120", "D", jig[shift:] + jig[:shift]))
        else:
            tunes.append(_tune(n, "REEL", "4/4", "1/2=100", "G", reel[shift:] + reel[:shift]))
    return "\n".join(tunes)


@pytest.fixture(scope="module")
def rhythm_run(tmp_path_factory) -> Path:
    from genseq.corpus import resolve_sources
    from genseq.data import open_data
    from genseq.prepare import TokenizeOptions, tokenize_corpus
    from genseq.train import Trainer

    root = tmp_path_factory.mktemp("rhythm")
    book = root / "tunes.abc"
    book.write_text(rhythm_corpus(), "utf-8")
    data = root / "data"
    tokenize_corpus(resolve_sources([str(book)]), data, TokenizeOptions(level="abc"))
    out = root / "run"
    cfg = small(hidden_size=32, embed_size=16, seq_len=32, batch_size=8, max_steps=40, seed=1)
    Trainer(cfg, open_data(data), out).run()
    return out


def test_sample_rhythm_conditions_the_tune_header(rhythm_run, tmp_path, cli):
    import pretty_midi

    book, midi = tmp_path / "tunes.abc", tmp_path / "midi"
    result = cli(
        *["sample", rhythm_run, "--rhythm", "jig", "--num-samples", "3", "--seed", "2"],
        *["-n", "120", "-o", book, "--midi", midi],
    )
    assert result.exit_code == 0, result.stderr
    tunes = split_tunebook(book.read_text("utf-8"))
    assert len(tunes) == 3
    for n, tune in enumerate(tunes, 1):
        header = tune.text.split("\nK:")[0].splitlines()
        assert header[2] == "R:jig", tune.text
        tempo = [line for line in header if line.startswith("Q:1/4=")]
        assert len(tempo) == 1  # the model's tempo token, played by the MIDI file too
        played = pretty_midi.PrettyMIDI(str(midi / f"tune_{n:03d}.mid")).get_tempo_changes()[1]
        assert played[0] == pytest.approx(float(tempo[0].partition("=")[2]), rel=1e-3)


def test_json_rows_say_the_rhythm_and_the_tempo(rhythm_run, cli):
    args = ["--rhythm", "jig", "--json", "--seed", "2", "--num-samples", "2", "--quiet"]
    result = cli("sample", rhythm_run, *args)
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["rhythm"] == "jig" and "\nR:jig\n" in row["abc"]
        assert f"\nQ:1/4={round(row['tempo'])}\n" in row["abc"]


def test_sample_tempo_overrides_the_models(rhythm_run, cli):
    result = cli("sample", rhythm_run, "--rhythm", "reel", "--tempo", "90", "--seed", "1")
    assert result.exit_code == 0, result.stderr
    assert "R:reel\n" in result.stdout and "Q:1/4=90\n" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--rhythm", "polka"],
            "--rhythm polka: the model never saw it in training; this model knows jig, reel",
        ),
        (["--rhythm", "jig", "--prompt", "X:1\nM:6/8\nK:D\nd"], "its own header"),
    ],
)
def test_rhythms_the_model_cannot_take_are_refused(rhythm_run, cli, args, message):
    result = cli("sample", rhythm_run, *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_an_unknown_rhythm_is_a_usage_error_listing_the_choices():
    result = run("sample", SHIPPED, "--rhythm", "tango", text=True)  # the installed command
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "'tango' is not one of 'reel', 'jig', 'slip-jig', 'hornpipe'" in line


def test_a_model_without_rhythm_tokens_refuses_rhythm_and_samples_as_before(cli):
    from genseq.checkpoint import load_checkpoint

    result = cli("sample", BEFORE_RHYTHM, "--rhythm", "jig")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --rhythm: this model has no rhythm tokens (its training tunes had no R: "
        "field it read); sample without --rhythm"
    )
    tok = load_checkpoint(BEFORE_RHYTHM).tokenizer
    assert not tok.options.rhythm and not tok.options.tempo
    # a tune with R: and Q: fields reads as it did before they were tokens
    assert (
        tok.encode_document(JIG).tolist()
        == tok.encode_document(
            JIG.replace("R:Double Jig\n", "").replace("Q:3/8=120\n", "")
        ).tolist()
    )
    plain = cli("sample", BEFORE_RHYTHM, "--meter", "6/8", "--seed", "4", "-n", "60")
    assert plain.exit_code == 0, plain.stderr
    assert "\nR:" not in plain.stdout and "Q:1/4=120\n" in plain.stdout


def test_a_rhythm_asked_for_comes_in_its_own_meters():
    """After ``R:reel`` the constraint offers only a reel's meters (2/2, 4/4, 2/4), never the
    6/8 a small model sometimes picks; the same for every rhythm with meters of its own."""
    from abc_walks import random_walk

    from genseq.checkpoint import load_checkpoint
    from genseq.music.abc_vocab import info
    from genseq.music.header import RHYTHM_METERS

    tok = load_checkpoint(SHIPPED).tokenizer
    known = {info(t).rhythm for t in tok.ids if info(t).kind == "rhythm"}
    assert {"reel", "jig", "slip-jig", "hornpipe", "waltz"} <= known
    for rhythm in sorted(known & set(RHYTHM_METERS)):
        tunes, _ = random_walk(tok, seed=1, batch=6, max_tokens=4, prompt=(f"R:{rhythm}",))
        meters = {info(t[1]).meter for t in tunes}
        assert meters <= set(RHYTHM_METERS[rhythm]), rhythm


def test_a_tune_without_a_tempo_plays_at_its_rhythms_usual_tempo(cli, tmp_path):
    """No tempo token (the shipped model, seed 3, samples none): a reel says Q:1/4=180 (a half
    note at 90) and its MIDI plays at it; --tempo still wins."""
    import pretty_midi

    from genseq.music.header import RHYTHM_TEMPI

    args = ("sample", SHIPPED, "--rhythm", "reel", "--seed", "3")
    result = cli(*args, "--midi", tmp_path / "own", "--json")
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout.splitlines()[0])
    assert row["tempo"] == RHYTHM_TEMPI["reel"] == 180 and "\nQ:1/4=180\n" in row["abc"]
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "own" / "tune_001.mid"))
    assert round(midi.get_tempo_changes()[1][0]) == 180
    assert "\nQ:1/4=100\n" in cli(*args, "--tempo", "100").stdout


def test_rhythm_names_are_read_whatever_their_case(cli):
    result = cli("sample", SHIPPED, "--rhythm", "Slip-Jig", "--seed", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert "\nR:slip jig\nM:9/8\n" in json.loads(result.stdout.splitlines()[0])["abc"]


def test_a_rhythm_with_a_meter_it_is_never_in_is_a_usage_error(cli):
    result = cli("sample", SHIPPED, "--rhythm", "reel", "--meter", "6/8", "--seed", "1")
    assert result.exit_code == 2 and "seed:" not in result.stderr
    assert result.stderr.strip() == (
        "error: --rhythm reel --meter 6/8: a reel is in 2/2, 4/4, 2/4, not 6/8 "
        "(--no-constrain samples it anyway)"
    )
    free = cli(
        "sample",
        SHIPPED,
        "--rhythm",
        "reel",
        "--meter",
        "6/8",
        "--no-constrain",
        "--seed",
        "1",
        "-n",
        "20",
    )
    assert free.exit_code == 0 and "\nR:reel\nM:6/8\n" in free.stdout
