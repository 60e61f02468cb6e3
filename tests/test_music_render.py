"""Sheet music and MusicXML: what verovio engraves and music21 writes, judged by parsing the files
back (ElementTree for the SVG, music21 for the MusicXML) against genseq's own reading of the
tune; `genseq music render` and `genseq sample --svg/--musicxml` end to end, and their bad
input."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import pytest
from testkit import files_below, one_error_line, small

from genseq.music.abc_lexer import split_tunebook, tokenize_tune
from genseq.music.abc_vocab import info
from genseq.music.bars import bar_report
from genseq.music.notes import tune_notes
from genseq.music.sheet import sheet

SVG = "{http://www.w3.org/2000/svg}"

# Repeats with first and second endings, a pickup, a chord symbol; a triplet, a chord with its
# length after the bracket and a tie in A dorian; a tie across a bar line in D mixolydian.
TUNEBOOK = """X:1
T:Jig with endings
M:6/8
L:1/8
K:D
A|:d2f afd|"G"g2e c3|d2f afd|1 e3 d2A:|2 e3 d3|]

X:2
T:Reel in A dorian
M:4/4
L:1/8
K:Ador
EA A2 (3ABc d2|e2 ed [ce]2 A2-|A2 GE D2 E>G|A8|]

X:3
T:Waltz in D mixolydian
M:3/4
L:1/4
K:Dmix
|:D F A|=c2 B|A3-|A2 z:|
"""
TUNES = split_tunebook(TUNEBOOK)
NOT_A_TUNE = "X:9\nT:Two voices\nM:4/4\nK:C\nV:1\nCDEF|\n"  # genseq reads one voice only


def groups(root: ET.Element, name: str) -> list[ET.Element]:
    """The SVG's ``<g>`` elements of verovio class ``name``."""
    return [g for g in root.iter(SVG + "g") if name in (g.get("class") or "").split()]


def as_written(notes) -> list[tuple[Fraction, int, Fraction]]:
    """genseq's notes as (start, pitch, length) in quarter notes, sorted."""
    return sorted((n.start * 4, n.pitch, n.duration * 4) for n in notes)


def music21_notes(score) -> list[tuple[Fraction, int, Fraction]]:
    """music21's sounding notes (ties joined, chord symbols left out) as (start, pitch,
    length) in quarter notes, one entry per pitch of a chord, sorted."""
    import music21

    out = []
    for n in score.stripTies().flatten().notes:
        if isinstance(n, music21.harmony.ChordSymbol):
            continue
        start, length = Fraction(n.offset).limit_denominator(96), Fraction(n.quarterLength)
        out += [(start, p.midi, length.limit_denominator(96)) for p in n.pitches]
    return sorted(out)


def svg_facts(path_or_text: Path | str) -> tuple[int, int, int, int]:
    """(measures, staves, systems, endings) of an SVG, after checking it parses as one
    document and that every measure holds exactly one staff."""
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    root = ET.fromstring(text)
    assert root.tag == SVG + "svg"
    measures = groups(root, "measure")
    for measure in measures:
        assert len(groups(measure, "staff")) == 1  # one staff line: a single-voice tune
    staves, systems = groups(root, "staff"), groups(root, "system")
    return len(measures), len(staves), len(systems), len(groups(root, "ending"))


# ---------------------------------------------------------------------------------------------
# The library: engraving and MusicXML


@pytest.mark.parametrize("raw", TUNES, ids=[t.title for t in TUNES])
def test_the_svg_has_one_staff_per_system_and_the_tunes_bars_and_endings(raw):
    tokens = tokenize_tune(raw.text)
    measures, staves, systems, endings = svg_facts(sheet(raw.text).svg())
    assert measures == len(bar_report(tokens).bars)
    assert staves == measures  # one staff in each bar of each system: never a second voice
    assert 1 <= systems <= measures
    assert endings == sum(info(t).kind == "ending" for t in tokens)  # 1st and 2nd time bars


@pytest.mark.parametrize("raw", TUNES, ids=[t.title for t in TUNES])
def test_musicxml_reparses_with_the_notes_of_the_abc(raw):
    """music21 reads the MusicXML as it read the ABC, and both as genseq reads the tune
    (repeats as written: the notation's own reading)."""
    import music21

    written = music21.converter.parse(sheet(raw.text).musicxml, format="musicxml")
    direct = music21.converter.parse(raw.text, format="abc")
    assert music21_notes(written) == music21_notes(direct)
    genseq = tune_notes(tokenize_tune(raw.text), expand_repeats=False)
    assert music21_notes(written) == as_written(genseq.notes)
    meter = written.recurse().getElementsByClass("TimeSignature").first()
    key = written.recurse().getElementsByClass("KeySignature").first()
    assert (meter.numerator, meter.denominator) == genseq.meter
    assert key.sharps == {"D": 2, "Ador": 1, "Dmix": 1}[raw.text.split("K:")[1].split()[0]]


def test_a_tune_longer_than_a_page_stays_one_svg(monkeypatch):
    """verovio paginates; every page is stacked into the one file, no bar lost."""
    from genseq.music import sheet as sheet_module

    tune = TUNES[1].text.replace("|A8|]", "|A8|" * 40 + "]")  # 43 bars: several systems
    one_page = svg_facts(sheet(tune).svg())
    assert one_page[:3] == (43, 43, one_page[2]) and one_page[2] > 3
    options = {**sheet_module.VEROVIO_OPTIONS, "pageHeight": 600}  # a few systems a page
    monkeypatch.setattr(sheet_module, "VEROVIO_OPTIONS", options)
    stacked = sheet(tune).svg()
    root = ET.fromstring(stacked)
    assert len(root.findall(SVG + "svg")) > 1  # several pages, nested in one document
    assert svg_facts(stacked) == one_page


def test_a_chord_symbol_music21_cannot_read_costs_only_the_chord_symbols():
    """Nottingham writes an empty chord symbol (``" "``), on which music21 raises; the tune is
    engraved without its chord symbols rather than not at all."""
    text = TUNES[0].text.replace('"G"g2e', '" ""G"g2e')
    plain = sheet(text)
    assert plain.dropped == "its chord symbols"
    assert "<harmony" not in plain.musicxml and "<harmony" in sheet(TUNES[0].text).musicxml
    assert svg_facts(plain.svg()) == svg_facts(sheet(TUNES[0].text).svg())
    assert sheet(TUNES[0].text).dropped == ""


# ---------------------------------------------------------------------------------------------
# `genseq music render`


@pytest.fixture
def tunebook(tmp_path) -> Path:
    """The three tunes, with one genseq cannot read in second place."""
    path = tmp_path / "tunes.abc"
    path.write_text(f"{TUNES[0].text}\n{NOT_A_TUNE}\n{TUNES[1].text}\n{TUNES[2].text}")
    return path


def test_render_writes_every_tune_and_engraves_what_only_music21_reads(tunebook, tmp_path, cli):
    """Every tune gets its files; the one genseq cannot read (a V: voice) is noted and gets its
    sheet music and MusicXML, which music21 reads from the text, but no MIDI."""
    out = tmp_path / "out"
    result = cli(
        *["music", "render", tunebook, "--svg", out / "svg", "--musicxml", out / "xml"],
        *["--midi", out / "midi"],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert f"note: {tunebook}:8 X:9 cannot be read" in result.stderr
    assert "sheet music and MusicXML only" in result.stderr
    numbers = ["001", "002", "003", "004"]  # one number per tune written, shared by its files
    assert sorted(p.name for p in (out / "svg").iterdir()) == [f"tune_{n}.svg" for n in numbers]
    assert sorted(p.name for p in (out / "xml").iterdir()) == [
        f"tune_{n}.musicxml" for n in numbers
    ]
    played = ["001", "003", "004"]  # the second tune has its number, but nothing to play
    assert sorted(p.name for p in (out / "midi").iterdir()) == [f"tune_{n}.mid" for n in played]
    for raw, n in zip(TUNES, played, strict=True):
        measures, *_ = svg_facts(out / "svg" / f"tune_{n}.svg")
        assert measures == len(bar_report(tokenize_tune(raw.text)).bars)


def test_render_skips_a_tune_genseq_cannot_read_when_only_sound_is_asked(tunebook, tmp_path, cli):
    out = tmp_path / "midi"
    result = cli("music", "render", tunebook, "--midi", out)
    assert result.exit_code == 0, result.stderr
    assert f"note: {tunebook}:8 X:9 cannot be read" in result.stderr and "skipped" in result.stderr
    assert len(list(out.iterdir())) == 3


def test_render_continues_the_numbering_and_overwrite_starts_again(tunebook, tmp_path, cli):
    """A second run into the same folder adds files after the first run's; --overwrite
    numbers from 1 again, replacing them."""
    out = tmp_path / "out"
    assert cli("music", "render", tunebook, "--svg", out).exit_code == 0
    first = files_below(out)
    again = cli("music", "render", tunebook, "--svg", out, "--musicxml", out)
    assert again.exit_code == 0, again.stderr
    assert {k: v for k, v in files_below(out).items() if k in first} == first  # untouched
    assert sorted(files_below(out)) == sorted(
        [*first, *(f"tune_{n:03d}.{x}" for n in (5, 6, 7, 8) for x in ("svg", "musicxml"))]
    )
    (out / "tune_001.svg").write_text("stale")
    replaced = cli("music", "render", tunebook, "--svg", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.stderr
    assert "wrote " + str(out / "tune_001.svg") in replaced.stderr
    assert svg_facts(out / "tune_001.svg") == svg_facts(sheet(TUNES[0].text).svg())


def test_render_reads_standard_input(tmp_path):
    from testkit import run

    result = run("music", "render", "-", "--svg", tmp_path / "in", input=TUNEBOOK.encode())
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "in").glob("tune_*.svg"))) == 3


@pytest.mark.parametrize(
    "args, code, message",
    [
        ([], 2, "give at least one of --svg"),
        (["--svg", "{out}", "--program", "128"], 2, "--program"),
        (["--svg", "{out}", "--tempo", "0"], 2, "--tempo"),
        (["no-such-corpus", "--svg", "{out}"], 1, "no-such-corpus"),
    ],
)
def test_render_options_are_checked(tunebook, tmp_path, cli, args, code, message):
    out = tmp_path / "out"
    result = cli("music", "render", tunebook, *[a.format(out=out) for a in args])
    assert result.exit_code == code
    assert message in one_error_line(result.stderr)
    assert not out.exists()


def test_an_svg_folder_that_is_a_file_is_refused_before_anything_is_written(
    tunebook, tmp_path, cli
):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    before = files_below(tmp_path)
    result = cli("music", "render", tunebook, "--midi", tmp_path / "midi", "--svg", taken)
    assert result.exit_code == 1
    assert f"{taken}: not a folder" in one_error_line(result.stderr)
    assert files_below(tmp_path) == before and not (tmp_path / "midi").exists()


def test_a_file_without_tunes_is_an_error(tunebook, tmp_path, cli):
    empty = tmp_path / "notes.abc"
    empty.write_text("% a tunebook header, and no X: line\nT:Not a tune\n")
    out = tmp_path / "out"
    result = cli("music", "render", tunebook, empty, "--svg", out)
    assert result.exit_code == 1
    assert f"{empty}: no tunes" in one_error_line(result.stderr)
    assert not out.exists()  # the good file before it is not half rendered


# ---------------------------------------------------------------------------------------------
# `genseq sample --svg --musicxml`, and the same tunes through `music render`


@pytest.fixture(scope="module")
def abc_run(tmp_path_factory) -> Path:
    """A tiny ABC model trained on a few dozen O'Neill's tunes (the grammar keeps its samples
    valid tunes however little it learnt)."""
    from genseq.corpus import resolve_sources
    from genseq.data import open_data
    from genseq.documents import read_tunes
    from genseq.prepare import TokenizeOptions, tokenize_corpus
    from genseq.train import Trainer

    root = tmp_path_factory.mktemp("sheet")
    book = root / "oneills.abc"
    book.write_text("\n".join(raw.text for _, raw in read_tunes(["oneills1850"])[:60]))
    tokenize_corpus(resolve_sources([str(book)]), root / "data", TokenizeOptions(level="abc"))
    cfg = small(hidden_size=32, num_layers=1, embed_size=16, max_steps=10, eval_every=10)
    Trainer(cfg, open_data(root / "data"), root / "run").run()
    return root / "run"


def test_sampled_tunes_are_engraved_as_render_engraves_their_tunebook(abc_run, tmp_path, cli):
    import music21

    book, out = tmp_path / "book.abc", tmp_path / "sampled"
    result = cli(
        *["sample", abc_run, "--num-samples", "2", "--seed", "1", "-n", "200", "-o", book],
        *["--svg", out, "--musicxml", out, "--meter", "6/8", "--key", "G"],
    )
    assert result.exit_code == 0, result.stderr
    names = ["tune_001.musicxml", "tune_001.svg", "tune_002.musicxml", "tune_002.svg"]
    assert sorted(p.name for p in out.iterdir()) == names
    rendered = tmp_path / "rendered"
    again = cli("music", "render", book, "--svg", rendered, "--musicxml", rendered)
    assert again.exit_code == 0, again.stderr
    assert sorted(p.name for p in rendered.iterdir()) == names
    for n, raw in enumerate(split_tunebook(book.read_text()), 1):
        sampled = svg_facts(out / f"tune_{n:03d}.svg")
        assert sampled == svg_facts(rendered / f"tune_{n:03d}.svg")
        assert sampled[0] == len(bar_report(tokenize_tune(raw.text)).bars)
        sampled_xml, rendered_xml = (
            music21.converter.parse(folder / f"tune_{n:03d}.musicxml", format="musicxml")
            for folder in (out, rendered)
        )
        assert music21_notes(sampled_xml) == music21_notes(rendered_xml)
        assert music21_notes(sampled_xml) == music21_notes(
            music21.converter.parse(raw.text, format="abc")
        )


def test_sample_refuses_an_svg_folder_that_is_a_file_and_writes_nothing(abc_run, tmp_path, cli):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    before = files_below(tmp_path)
    result = cli(
        *["sample", abc_run, "-n", "50", "-o", tmp_path / "book.abc", "--svg", taken],
        *["--midi", tmp_path / "midi"],
    )
    assert result.exit_code == 1
    assert f"{taken}: not a folder" in one_error_line(result.stderr)
    assert files_below(tmp_path) == before and not (tmp_path / "midi").exists()


def test_text_models_refuse_sheet_music(tiny_run, tmp_path, cli):
    result = cli("sample", tiny_run, "--svg", tmp_path / "s", "--musicxml", tmp_path / "x")
    assert result.exit_code == 2
    assert "--svg, --musicxml: only for ABC models" in one_error_line(result.stderr)
    assert not (tmp_path / "s").exists()


def test_render_plays_each_tune_at_its_own_q_tempo_unless_tempo_is_given(tmp_path, cli):
    """A tune's Q: sets its MIDI tempo (a dotted-quarter 6/8 beat counts as 1.5 quarters); a
    tune without Q: plays at 120; --tempo overrides every tune."""
    import pretty_midi

    book = tmp_path / "book.abc"
    with_q = TUNEBOOK.replace("M:6/8\n", "M:6/8\nQ:3/8=60\n", 1)
    book.write_text(with_q)
    assert cli("music", "render", book, "--midi", tmp_path / "own").exit_code == 0
    assert cli("music", "render", book, "--midi", tmp_path / "set", "--tempo", 90).exit_code == 0

    def qpm(path: Path) -> float:
        return round(pretty_midi.PrettyMIDI(str(path)).get_tempo_changes()[1][0], 3)

    assert qpm(tmp_path / "own" / "tune_001.mid") == 90.0  # 60 dotted quarters a minute
    assert qpm(tmp_path / "own" / "tune_002.mid") == 120.0  # no Q: of its own
    assert {qpm(p) for p in (tmp_path / "set").glob("*.mid")} == {90.0}
