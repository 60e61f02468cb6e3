"""Two ways to engrave ABC tunes with verovio, judged on real corpus tunes: correctness and time.

A: verovio reads the ABC itself (its ABC importer).
B: music21 reads the ABC, writes MusicXML, and verovio reads the MusicXML.

Each tune is read by genseq's lexer as the reference (``notes.tune_notes`` with repeats not
expanded: every note as written, ties joined), then engraved both ways. What verovio built is
read back from its own MEI (``getMEI``): every note's pitch, onset and length (grace notes
left out, ties joined), the endings (volta brackets), the key signature and the meter; the
SVG gives the bars (``g class="measure"``). A path is right on a tune when its notes equal
genseq's, its bar count equals genseq's (``bars.bar_report``), it has as many endings as the
tune writes, and its key signature and meter are the tune's. Tunes are taken both as the
corpus writes them and as genseq writes them back (``abc_writer.tune_text``: what
`genseq sample` engraves).

Usage: python benchmarks/sheet_music.py [--tunes 60] [--modal 10] [--seed 0] [--show N]
[--no-record]
Time per tune is the median over the tunes (single process, no warm-up beyond the first tune);
the shared machine makes these figures rough.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from _common import DEFAULT_SHARED, add_common_args, emit, markdown_table

MEI = "{http://www.music-encoding.org/ns/mei}"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
STEPS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
ACCIDENTALS = {"s": 1, "f": -1, "n": 0, "ss": 2, "x": 2, "ff": -2}
DURATIONS = {"long": Fraction(4), "breve": Fraction(2)}
OPTIONS = {"adjustPageHeight": True, "pageWidth": 2100, "header": "none", "footer": "none"}


@dataclass
class Engraved:
    notes: list[tuple[Fraction, int, Fraction]]  # (onset, pitch, length) in whole notes
    bars: int
    endings: int
    fifths: int | None
    meter: tuple[int, int] | None
    seconds: dict[str, float]


def corpus_tunes(n: int, seed: int, modal: int) -> list[str]:
    """``n`` readable tunes drawn evenly from O'Neill's 1850, Ryan's Mammoth (chords: double
    stops) and Nottingham (when present: endings, ties, triplets), and ``modal`` more in modes."""
    from genseq.documents import read_tunes
    from genseq.music.abc_lexer import AbcError, tokenize_tune

    sources = ["oneills1850", "ryans-mammoth"]
    nottingham = DEFAULT_SHARED / "corpora" / "nottingham" / "ABC_cleaned"
    if nottingham.is_dir():
        sources.append(str(nottingham))
    rng = random.Random(seed)
    chosen = []
    for k, source in enumerate(sources):
        want = n // len(sources) + (k < n % len(sources))
        tunes = [raw.text for _, raw in read_tunes([source])]
        rng.shuffle(tunes)
        readable = []
        for text in tunes:
            if len(readable) == want:
                break
            try:
                tokenize_tune(text)
            except AbcError:
                continue
            readable.append(text)
        chosen += readable
    return chosen + modal_tunes(modal, seed, set(chosen))


def modal_tunes(n: int, seed: int, taken: set[str]) -> list[str]:
    """``n`` O'Neill's tunes in a mode other than major and minor (K:Ador, K:Dmix...): about
    2 % of the corpus, so an even draw holds almost none."""
    from genseq.documents import read_tunes
    from genseq.music.abc_lexer import AbcError, tokenize_tune

    tunes = [raw.text for _, raw in read_tunes(["oneills1850"]) if raw.text not in taken]
    random.Random(seed).shuffle(tunes)
    chosen = []
    for text in tunes:
        if len(chosen) == n:
            break
        try:
            tokens = tokenize_tune(text)
        except AbcError:
            continue
        if any(t.startswith("K:") and t[-3:] not in ("maj", "min") for t in tokens):
            chosen.append(text)
    return chosen


FEATURES = {  # what a tune writes -> the token kinds (or test) that show it
    "endings": lambda kinds, t: "ending" in kinds,
    "repeats": lambda kinds, t: ":|" in t,
    "ties": lambda kinds, t: "tie" in kinds,
    "triplets and tuplets": lambda kinds, t: "tuplet" in kinds,
    "chords": lambda kinds, t: "chord_start" in kinds,
    "modal key (K:Ador...)": lambda kinds, t: any(
        x.startswith("K:") and x[-3:] not in ("maj", "min") for x in t
    ),
    "meter other than 4/4": lambda kinds, t: any(
        x.startswith("M:") and x not in ("M:4/4", "M:C") for x in t
    ),
}


def features(text: str) -> list[str]:
    from genseq.music.abc_lexer import tokenize_tune
    from genseq.music.abc_vocab import info

    tokens = tokenize_tune(text)
    kinds = {info(t).kind for t in tokens}
    return [name for name, test in FEATURES.items() if test(kinds, tokens)]


def reference(text: str):
    """genseq's reading: notes as written, bars, endings, key signature and meter."""
    from genseq.music.abc_lexer import tokenize_tune
    from genseq.music.abc_vocab import info, key_fifths
    from genseq.music.bars import bar_report
    from genseq.music.notes import tune_notes

    tokens = tokenize_tune(text)
    tune = tune_notes(tokens, expand_repeats=False)
    notes = sorted((n.start, n.pitch, n.duration) for n in tune.notes)
    endings = sum(info(t).kind == "ending" for t in tokens)
    fifths = key_fifths(*tune.key) if tune.key else None
    return notes, len(bar_report(tokens).bars), endings, fifths, tune.meter


def engrave_abc(text: str) -> Engraved:
    import verovio

    start = time.perf_counter()
    tk = verovio.toolkit()
    tk.setOptions({"inputFrom": "abc", **OPTIONS})
    if not tk.loadData(text):
        raise ValueError("verovio could not read the ABC")
    svg = "".join(tk.renderToSVG(p) for p in range(1, tk.getPageCount() + 1))
    seconds = {"verovio": time.perf_counter() - start}
    return read_back(tk.getMEI(), svg, seconds)


def engrave_musicxml(text: str) -> Engraved:
    import music21
    import verovio
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    start = time.perf_counter()
    score = music21.converter.parse(text, format="abc")
    parsed = time.perf_counter()
    xml = GeneralObjectExporter(score).parse().decode("utf-8")
    written = time.perf_counter()
    tk = verovio.toolkit()
    tk.setOptions({"inputFrom": "musicxml", **OPTIONS})
    if not tk.loadData(xml):
        raise ValueError("verovio could not read the MusicXML")
    svg = "".join(tk.renderToSVG(p) for p in range(1, tk.getPageCount() + 1))
    done = time.perf_counter()
    seconds = {
        "music21 parse": parsed - start,
        "MusicXML write": written - parsed,
        "verovio": done - written,
    }
    return read_back(tk.getMEI(), svg, seconds)


def read_back(mei: str, svg: str, seconds: dict[str, float]) -> Engraved:
    """What verovio drew, from its MEI: notes as a musician reads them (ties joined, pitch
    from the written accidentals, the bar's earlier ones and the key signature; MEI's
    gestural accidentals, which only playback uses, are ignored), endings, key and meter."""
    root = ET.fromstring(mei)
    tie_starts = {t.get("startid", "").lstrip("#") for t in root.iter(MEI + "tie")}
    tie_ends = {t.get("endid", "").lstrip("#") for t in root.iter(MEI + "tie")}
    notes: list[tuple[Fraction, int, Fraction]] = []
    sounding: dict[tuple, int] = {}  # (step, octave) -> index in notes of a note tied on
    onset = Fraction(0)
    first_key = keysig = meter = None
    for el in root.iter():  # in document order: a key change applies from the next bar
        tag = el.tag.removeprefix(MEI)
        if tag in ("scoreDef", "staffDef") and el.get("keysig"):
            keysig = el.get("keysig")
        elif tag == "keySig" and el.get("sig"):
            keysig = el.get("sig")
        elif tag in ("scoreDef", "staffDef", "meterSig") and meter is None:
            count, unit = (
                el.get("meter.count") or el.get("count"),
                el.get("meter.unit") or el.get("unit"),
            )
            if count and unit:
                meter = (int(count), int(unit))
        first_key = first_key or keysig
        if tag != "measure" or (layer := el.find(f"{MEI}staff/{MEI}layer")) is None:
            continue
        length = Fraction(0)
        carried = _signature(_fifths(keysig))  # (step, octave) or step -> alteration
        for item, dur in _timed(layer, Fraction(1)):
            for place, pitch, note in _pitches(item, carried):
                ident = note.get(XML_ID)
                # A note tied over keeps its pitch (its accidental is not drawn again).
                if (ident in tie_ends or note.get("tie") in ("m", "t")) and place in sounding:
                    i = sounding.pop(place)
                    notes[i] = (notes[i][0], notes[i][1], notes[i][2] + dur)
                else:
                    notes.append((onset + length, pitch, dur))
                    i = len(notes) - 1
                if ident in tie_starts or note.get("tie") in ("i", "m"):
                    sounding[place] = i
            length += dur
        onset += length
    bars = svg.count('class="measure')
    endings = sum(1 for _ in root.iter(MEI + "ending"))
    return Engraved(sorted(notes), bars, endings, _fifths(first_key), meter, seconds)


def _signature(fifths: int) -> dict:
    order = "fcgdaeb" if fifths >= 0 else "beadgcf"
    return dict.fromkeys(order[: abs(fifths)], 1 if fifths > 0 else -1)


def _timed(element: ET.Element, scale: Fraction):
    """(note, rest or chord, sounding length) in order, through beams and tuplets."""
    for child in element:
        tag = child.tag.removeprefix(MEI)
        if tag in ("beam", "tuplet", "beamSpan", "graceGrp"):
            if tag == "graceGrp":
                continue
            inner = scale
            if tag == "tuplet":
                inner = scale * Fraction(int(child.get("numbase")), int(child.get("num")))
            yield from _timed(child, inner)
        elif tag in ("note", "chord", "rest", "mRest"):  # a space pads a short bar: no time
            if child.get("grace"):
                continue
            yield child, _length(child) * scale


def _length(item: ET.Element) -> Fraction:
    dur = item.get("dur")
    if dur is None:
        return Fraction(0)  # mRest: not counted (tunes rarely have them)
    base = DURATIONS.get(dur) or Fraction(1, int(dur))
    dots = int(item.get("dots") or 0)
    length = base * (2 - Fraction(1, 2**dots))
    if item.get("num") and item.get("numbase"):
        length = length * Fraction(int(item.get("numbase")), int(item.get("num")))
    return length


def _pitches(item: ET.Element, carried: dict):
    """MIDI pitches of a note or chord as drawn: a written accidental holds for its step and
    octave to the end of the bar; otherwise the key signature's."""
    tag = item.tag.removeprefix(MEI)
    notes = [item] if tag == "note" else list(item.iter(MEI + "note")) if tag == "chord" else []
    for note in notes:
        accid = note.find(MEI + "accid")
        written = note.get("accid") or (accid.get("accid") if accid is not None else None)
        step, octave = note.get("pname"), note.get("oct")
        if written:
            carried[(step, octave)] = ACCIDENTALS[written]
        alter = carried.get((step, octave), carried.get(step, 0))
        yield (step, octave), 12 * (int(octave) + 1) + STEPS[step] + alter, note


def _fifths(keysig: str | None) -> int:
    """``3s`` -> 3, ``2f`` -> -2; none drawn (absent or ``0``) -> 0."""
    if not keysig or keysig == "0":
        return 0
    return int(keysig[:-1]) * (1 if keysig[-1] == "s" else -1)


def judge(text: str, engrave, pool: list) -> tuple[list[str], dict[str, float]]:
    """The ways a path got a tune wrong (none: right) and its seconds per stage. Engraving
    runs in a worker process: verovio's ABC importer aborts the process on some tunes."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    notes, bars, endings, fifths, meter = reference(text)
    if not pool:
        pool.append(ProcessPoolExecutor(1))
    try:
        got = pool[0].submit(engrave, text).result()
    except BrokenProcessPool:
        pool.pop().shutdown()
        return ["crashed the process"], {}
    except Exception as exc:  # a failure to engrave is a result here
        return [f"failed ({type(exc).__name__})"], {}
    wrong = []
    if got.notes != notes:
        wrong.append("notes")
    if got.bars != bars:
        wrong.append("bars")
    if got.endings != endings:
        wrong.append("endings")
    if fifths is not None and got.fifths != fifths:
        wrong.append("key")
    if meter is not None and got.meter != meter:
        wrong.append("meter")
    return wrong, got.seconds


PATHS = {"A: verovio reads ABC": engrave_abc, "B: music21, MusicXML, verovio": engrave_musicxml}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tunes", type=int, default=60, help="corpus tunes (default 60)")
    parser.add_argument("--modal", type=int, default=10, help="more tunes in modes (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=0, help="print N failures of each path")
    add_common_args(parser, shared=False)
    args = parser.parse_args()

    from genseq.music.abc_lexer import tokenize_tune, tune_title
    from genseq.music.abc_writer import tune_text

    raw = corpus_tunes(args.tunes, args.seed, args.modal)
    written = [tune_text(tokenize_tune(t), i + 1, tune_title(t)) for i, t in enumerate(raw)]
    tagged = [features(t) for t in raw]
    rows, by_feature = [], {}
    for form, tunes in (("corpus", raw), ("genseq", written)):
        for name, engrave in PATHS.items():
            problems: Counter[str] = Counter()
            times: dict[str, list[float]] = {}
            verdicts, shown, pool = [], 0, []
            for text in tunes:
                wrong, seconds = judge(text, engrave, pool)
                verdicts.append(not wrong)
                problems.update(wrong)
                for stage, sec in seconds.items():
                    times.setdefault(stage, []).append(sec)
                if wrong and shown < args.show:
                    shown += 1
                    print(f"--- {name}: {wrong}\n{text}")
            for pool_ in pool:
                pool_.shutdown()
            for feature in FEATURES:
                with_it = [v for v, f in zip(verdicts, tagged, strict=True) if feature in f]
                cell = f"{sum(with_it)}/{len(with_it)}"
                by_feature.setdefault(feature, {})[(form, name)] = cell
            total = [sum(ts) for ts in zip(*times.values(), strict=True)] or [0.0]
            stages = "; ".join(f"{k} {1000 * statistics.median(v):.0f}" for k, v in times.items())
            wrongs = ", ".join(f"{k} {v}" for k, v in problems.most_common()) or "-"
            rows.append(
                (
                    form,
                    name,
                    f"{sum(verdicts)}/{len(tunes)}",
                    wrongs,
                    f"{1000 * statistics.median(total):.0f}",
                    stages,
                )
            )
    headers = ["ABC as", "path", "right", "wrong (tunes)", "ms/tune", "ms by stage (median)"]
    table = markdown_table(headers, rows)
    keys = [(form, name) for form in ("corpus", "genseq") for name in PATHS]
    feature_rows = [(f, *(cells[k] for k in keys)) for f, cells in by_feature.items()]
    table += "\n\nRight, among the tunes that write each feature:\n\n" + markdown_table(
        ["feature", *(f"{form}, {name[:1]}" for form, name in keys)], feature_rows
    )
    emit("engraving ABC with verovio: directly or through music21", table, args)


if __name__ == "__main__":
    main()
