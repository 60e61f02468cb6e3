"""Form by construction: parts of a set length, cadences on the tonic, read back by
``genseq.music.form`` and checked independently by music21 and the reference ABC programs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from abc_walks import random_walk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genseq.errors import UsageError
from genseq.music.abc_constraint import PartForm
from genseq.music.abc_vocab import degree, info
from genseq.music.bars import bar_report
from genseq.music.form import form_summary, tune_form

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "folk-tunes"


def form_of(text: str):
    return tune_form(text.split())


# ---------------------------------------------------------------------------------------------
# Reading the form of a tune


def test_parts_count_bars_with_a_pickup_as_one():
    # 6/8: an eighth pickup, seven full bars and a 5/8 closing bar make eight bars.
    body = "A | " + "d 6 | " * 7 + "d 4 e :|"
    form = form_of(f"M:6/8 K:Dmaj {body} |: f | " + "e 6 | " * 7 + "d 4 d ||")
    assert [p.bars for p in form.parts] == [8, 8]
    assert [p.repeated for p in form.parts] == [True, False]
    assert form.common_parts


def test_a_second_ending_replays_the_first_endings_bars():
    tune = "M:2/4 K:Gmaj |: " + "G 4 | " * 6 + "[1 A 4 | B 4 :| [2 B 4 | G 4 ||"
    form = form_of(tune)
    assert [p.bars for p in form.parts] == [8]
    assert form.parts[0].repeated


def test_a_pickup_before_the_repeat_sign_joins_its_part():
    form = form_of("M:2/4 K:Gmaj D |: " + "G 4 | " * 7 + "G 3 :|")
    assert [p.bars for p in form.parts] == [8]


@pytest.mark.parametrize(
    ("letter", "held", "tonic", "mode", "expected"),
    [
        ("D", None, "D", "maj", "tonic"),
        ("F", None, "D", "maj", "triad"),  # F sharp in D major: the third
        ("F", 0, "D", "maj", "other"),  # F natural
        ("A", None, "A", "dor", "tonic"),
        ("C", None, "A", "dor", "triad"),  # the minor third
        ("B", None, "E", "min", "triad"),
        ("G", 1, "E", "min", "other"),  # G sharp against E minor
    ],
)
def test_degree_of_a_note_in_a_key(letter, held, tonic, mode, expected):
    assert degree(letter, held, tonic, mode) == expected


def test_the_last_note_decides_the_ending():
    assert form_of("M:2/4 K:Dmaj d 4 | f 2 d 2 |]").ending == "tonic"
    assert form_of("M:2/4 K:Dmaj d 4 | d 2 f 2 |]").ending == "triad"
    assert form_of("M:2/4 K:Dmaj d 4 | d 2 ^d 2 |]").ending == "other"
    assert form_of("M:2/4 K:Dmaj d 4 | d 2 ^d d |]").ending == "other"  # ^ held in the bar
    summary = form_summary([form_of("M:2/4 K:Dmaj d 4 | d 4 |]")])
    assert summary["tonic_endings"] == 1.0


def test_a_part_form_must_be_possible():
    with pytest.raises(UsageError):
        PartForm(bars=0)
    with pytest.raises(UsageError):
        PartForm(parts=0)
    assert PartForm().part_length(Fraction(6, 8)) == 6  # 8 bars of 6/8
    assert PartForm().part_length(Fraction(9, 8)) == Fraction(9, 2)  # 4 bars of 9/8
    assert PartForm(bars=16).part_length(Fraction(2, 4)) == 8


# ---------------------------------------------------------------------------------------------
# Sampling with a form


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from genseq.corpus import resolve_sources
    from genseq.data import open_data
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    out = tmp_path_factory.mktemp("form") / "data"
    tokenize_corpus(resolve_sources(["ryans-mammoth"]), out, TokenizeOptions(level="abc"))
    return open_data(out).tokenizer()


def form_walk(tokenizer, seed: int, form: PartForm, batch: int = 6) -> list[list[str]]:
    """Tunes drawn under random logits through the constraint with ``form``; random logits
    write far more tokens a bar than a model: room for 3 x 16 bars of them."""
    tunes, done = random_walk(tokenizer, seed, batch, max_tokens=4000, form=form)
    assert all(done)
    return tunes


def part_ends(tokens: list[str]) -> list[str]:
    """The degree of the last note before each section close that ends a part."""
    degrees, key, last, held = [], None, None, {}
    for k, token in enumerate(tokens):
        t = info(token)
        if t.kind == "key":
            key = (t.tonic, t.mode)
        elif t.kind == "note":
            if t.accidental is not None:
                held[(t.letter, t.octave)] = t.accidental
            last = degree(t.letter, held.get((t.letter, t.octave)), *key)
        elif t.kind == "bar":
            first_ending = token == ":|" and k + 1 < len(tokens) and tokens[k + 1] == "[2"
            if token in (":|", "||", "|]") and not first_ending:
                degrees.append(last)
            held = {}
    return degrees


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), bars=st.sampled_from([None, 4, 8, 16]), parts=st.integers(1, 3))
def test_tunes_have_the_form_asked_for(tokenizer, seed, bars, parts):
    form = PartForm(bars, parts)
    for tokens in form_walk(tokenizer, seed, form):
        meter = next(info(t) for t in tokens if info(t).kind == "meter")  # R: may come first
        expected = bars or (8 if meter.value <= 1 else 4)
        read = tune_form(tokens)
        assert [p.bars for p in read.parts] == [expected] * parts, tokens
        assert bar_report(tokens).clean
        ends = part_ends(tokens)
        assert ends[-1] == "tonic"
        assert all(e in ("tonic", "triad") for e in ends)


def test_the_shipped_model_ends_on_the_tonic_as_music21_reads_it():
    """music21 reads the tunes independently: the last note's pitch class is the key's."""
    import music21

    from genseq.checkpoint import load_checkpoint
    from genseq.music.tune_sampling import build_prompt, sample_tunes
    from genseq.sample import SamplingSettings

    ckpt = load_checkpoint(SHIPPED)
    for meter, key in (("6/8", "D"), ("4/4", "G"), ("3/4", "Ador")):
        prompt = build_prompt(ckpt, meter=meter, key=key)
        tunes = sample_tunes(
            ckpt, prompt, SamplingSettings(), num_samples=4, seed=7, form=PartForm()
        )
        for t in tunes:
            score = music21.converter.parse(t.abc, format="abc")
            last = list(score.flatten().notes)[-1]
            tonic = music21.pitch.Pitch(key[0])
            assert last.pitches[-1].pitchClass == tonic.pitchClass, t.abc


def test_sample_cli_form_options(cli, tmp_path):
    out = tmp_path / "tunes.abc"
    result = cli(
        *["sample", SHIPPED, "--num-samples", "2", "--seed", "3", "-o", out, "--json"],
        *["--bars-per-part", "16", "--parts", "1", "--meter", "2/4", "--key", "G"],
    )
    assert result.exit_code == 0, result.stderr
    assert '"form": {"bars": 16, "parts": 1}' in result.stdout
    from genseq.music.abc_lexer import split_tunebook, tokenize_tune

    for tune in split_tunebook(out.read_text("utf-8")):
        assert [p.bars for p in tune_form(tokenize_tune(tune.text)).parts] == [16]
    for bad, message in (
        (["--bars-per-part", "0"], "--bars-per-part must be at least 1"),
        (["--parts", "0"], "--parts must be at least 1"),
        (["--form", "free", "--parts", "3"], "only with --form folk"),
    ):
        result = cli("sample", SHIPPED, "-o", tmp_path / "bad.abc", *bad)
        assert result.exit_code == 2, result.stderr
        assert result.stderr.count("error:") == 1 and message in result.stderr
        assert not (tmp_path / "bad.abc").exists()


def test_a_prompt_that_breaks_the_form_writes_nothing(cli, tmp_path):
    out = tmp_path / "midi"
    result = cli(
        *["sample", SHIPPED, "--meter", "6/8", "--key", "D", "--prompt", "|: A2d fed :|"],
        *["--midi", out, "--png", tmp_path / "png", "-o", tmp_path / "t.abc"],
    )
    assert result.exit_code == 2
    assert "--form free" in result.stderr and result.stderr.count("error:") == 1
    assert list(tmp_path.iterdir()) == []
