"""`genseq music stats`: how real a set of ABC tunes (or MIDI files) looks, alone or against a
reference."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer
from genseq.commands._common import (
    EncodingErrorsOpt,
    QuietOpt,
    err_console,
    number,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from genseq.music.midi_stats import NoteSet

TOP_RUNS = 10  # tunes listed in the memorisation table


def stats(
    files: Annotated[
        list[str],
        typer.Argument(
            help="ABC or MIDI files, directories of .abc/.mid files, corpus names or - for "
            "standard input.",
            show_default=False,
        ),
    ],
    reference: Annotated[
        list[str] | None,
        typer.Option(
            "--reference",
            "-r",
            help="Tunes to compare with (repeatable): ABC or MIDI files, directories or corpus "
            "names such as folk-abc. Adds feature distances and the longest copied runs.",
            show_default=False,
        ),
    ] = None,
    parse_limit: Annotated[
        int,
        typer.Option(
            "--parse-limit",
            min=0,
            help="Check at most this many tunes with music21 (about 0.1 s each; a fixed "
            "sample when there are more); 0 skips the check.",
        ),
    ] = 200,
    transpose: Annotated[
        str | None,
        typer.Option(
            "--transpose",
            help="Move every tune (and the reference) to this tonic first, e.g. C, as for a "
            "model trained with transposition; memorised runs are then found across keys.",
            show_default=False,
        ),
    ] = None,
    encoding_errors: EncodingErrorsOpt = "strict",
    json_out: Annotated[
        bool, typer.Option("--json", help="Write one JSON object to stdout.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Statistics of ABC tunes or MIDI files: readability, bars, pitch and rhythm, memorisation.

    Bars are checked against the meter with the corrections human tunes need (anacrusis,
    bars split across repeat signs, endings), so real folk tunes score about 95-99 % clean.
    With --reference, each histogram is compared by overlapping area and KL divergence, and
    every tune's longest run of tokens shared with a reference tune is reported.

    MIDI files (.mid, .midi), in FILES or the reference, get the note statistics only: files
    read, pitch range, and the pitch-class, interval, note-length and pitch-range histograms
    (compared with the reference's, which may be ABC).
    """
    from genseq.documents import holds_midi
    from genseq.errors import GenseqError, UsageError
    from genseq.music.abc_lexer import LexOptions
    from genseq.music.stats import compute_stats

    if transpose is not None and not re.fullmatch(r"[A-Ga-g][#b]?", transpose):
        raise UsageError(f"--transpose {transpose!r}: expected a tonic such as C, F# or Bb")
    if holds_midi(files) or holds_midi(reference or []):
        if transpose is not None:
            raise UsageError("--transpose is for ABC tunes; MIDI files are read as they are")
        _note_stats(files, reference, encoding_errors, json_out)
        return
    options = LexOptions(transpose=transpose)
    tunes = _source_tunes(files, encoding_errors)
    if not tunes:
        raise GenseqError(f"no tunes (X: lines) found in {', '.join(files)}")
    ref_tunes = _source_tunes(reference, encoding_errors) if reference else None
    if reference and not ref_tunes:
        raise GenseqError(f"no tunes (X: lines) found in the reference {', '.join(reference)}")
    console = err_console()
    say = None if quiet or json_out else (lambda message: console.print(message))
    result = compute_stats(tunes, ref_tunes, parse_limit=parse_limit, options=options, progress=say)
    report = {"schema": 1, "files": list(files), "reference_sources": reference or []}
    report |= result.as_dict()
    if json_out:
        print_json(report)
    else:
        _print_report(report)


def _source_tunes(sources: list[str], encoding_errors: str) -> list:
    from genseq.documents import read_tunes
    from genseq.music.stats import SourceTune

    return [SourceTune(raw, name) for name, raw in read_tunes(sources, encoding_errors)]


def _note_stats(
    files: list[str], reference: list[str] | None, encoding_errors: str, json_out: bool
) -> None:
    from genseq.documents import read_music
    from genseq.errors import GenseqError
    from genseq.music.midi_stats import note_stats, read_documents

    ours = read_music(files, encoding_errors)
    if not ours:
        raise GenseqError(f"no MIDI files or tunes found in {', '.join(files)}")
    ours_read = _readable(read_documents(ours), ", ".join(files))
    theirs = None
    if reference:
        ref_docs = read_music(reference, encoding_errors)
        if not ref_docs:
            raise GenseqError(f"no MIDI files or tunes in the reference {', '.join(reference)}")
        theirs = _readable(read_documents(ref_docs), "the reference " + ", ".join(reference))
    report = {"schema": 1, "files": list(files), "reference_sources": reference or []}
    report |= note_stats(ours_read, theirs)
    if json_out:
        print_json(report)
        return
    from rich.table import Table

    table = Table(
        title=f"{report['documents']:,} MIDI files or tunes from {', '.join(files)}",
        title_justify="left",
        show_header=False,
    )
    table.add_column("statistic")
    table.add_column("value")
    table.add_row("read", _percent(report["readable"], report["documents"]))
    table.add_row("unreadable", _top(report["unreadable_reasons"], 3))
    table.add_row("notes", f"{report['notes']:,}")
    pitch = report["pitch"]
    if pitch["tunes"]:
        table.add_row(
            "pitch range (MIDI)",
            f"{pitch['min']}-{pitch['max']}; per file on average "
            f"{pitch['mean_low']:.1f}-{pitch['mean_high']:.1f} "
            f"({pitch['mean_span']:.1f} semitones)",
        )
    for name in ("pitch_class", "interval", "note_length"):
        hist = report["histograms"][name]
        ranked = sorted(zip(hist["bins"], hist["counts"], strict=True), key=lambda x: -x[1])
        table.add_row(name.replace("_", " "), _top({k: v for k, v in ranked if v}, 8))
    if report["reference"] is not None:
        ref = report["reference"]
        table.add_row("reference read", _percent(ref["readable"], ref["documents"]))
        for name, d in ref["distances"].items():
            table.add_row(
                f"{name.replace('_', ' ')} vs reference",
                f"overlap {number(d['overlap'], '.3f')}, KL {number(d['kl'], '.4f')}",
            )
    print_table(table)


def _readable(notes: NoteSet, where: str) -> NoteSet:
    """``notes``, when at least one document was read: with none there are no statistics, so
    this is an error naming the skips, as `genseq tokenize` refuses a corpus it cannot read
    (a set with some readable documents reports its skips in the table instead)."""
    from genseq.errors import GenseqError

    if notes.read:
        return notes
    reason, _ = notes.unreadable.most_common(1)[0]
    raise GenseqError(
        f"no readable MIDI files or tunes in {where}: {notes.documents:,} skipped "
        f"(most often: {reason})"
    )


# ---------------------------------------------------------------------------------------------
# The human-readable report


def _percent(part: int, whole: int) -> str:
    if not whole:
        return f"{part:,} / 0"
    return f"{part:,} / {whole:,} ({100 * part / whole:.1f} %)"


def _top(counts: dict[str, int], n: int = 6) -> str:
    items = list(counts.items())
    text = ", ".join(f"{k} {v:,}" for k, v in items[:n])
    return text + (f", +{len(items) - n} more" if len(items) > n else "") if text else "-"


def _summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    bars, pitch, m21 = report["bars"], report["pitch"], report["music21"]
    rows = [
        ("tunes read", _percent(report["readable"], report["tunes"])),
        ("unreadable", _top(report["unreadable_reasons"], 3)),
    ]
    if report["notes_unreadable"]:
        rows.append(("notes unreadable", _top(report["notes_unreadable"], 3)))
    if m21 is not None:
        rows.append(("music21 parses (of a sample)", _percent(m21["parsed"], m21["checked"])))
    rows += [
        ("valid bars", _percent(bars["valid"], bars["checked"])),
        ("full bars", _percent(bars["full"], bars["checked"])),
        ("clean tunes (every bar valid)", _percent(bars["tunes_clean"], bars["tunes_checked"])),
        (
            "within abc2midi's and abcm2ps's rules",
            _percent(bars["tunes_within_rules"], bars["tunes_checked"]),
        ),
    ]
    if bars["problems"]:
        rows.append(("rules broken", _top(bars["problems"], 3)))
    if pitch["tunes"]:
        rows.append(
            (
                "pitch range (MIDI)",
                f"{pitch['min']}-{pitch['max']}; per tune on average "
                f"{pitch['mean_low']:.1f}-{pitch['mean_high']:.1f} "
                f"({pitch['mean_span']:.1f} semitones)",
            )
        )
    rows += [("meters", _top(report["meters"])), ("keys", _top(report["keys"]))]
    return rows + [_rhythm_row(report)] + _form_rows(report)


def _rhythm_row(report: dict[str, Any], n: int = 6) -> tuple[str, str]:
    """Each rhythm's share of the tunes (``none``: no R:), beside the reference's share; the
    reference's rhythms that the tunes lack are listed too, at 0 %."""
    ours = report["rhythms"]
    theirs = (report.get("reference") or {}).get("rhythms")
    names = list(ours) + [name for name in theirs or {} if name not in ours]
    total, ref_total = max(sum(ours.values()), 1), max(sum((theirs or {}).values()), 1)
    shares = []
    for name in names[:n]:
        share = f"{name} {ours.get(name, 0) / total:.1%}"
        if theirs is not None:
            share += f" (reference {theirs.get(name, 0) / ref_total:.1%})"
        shares.append(share)
    more = f", +{len(names) - n} more" if len(names) > n else ""
    return ("rhythms (R:)", ", ".join(shares) + more if shares else "-")


def _form_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Form beside the reference's: parts of 8 or 16 bars, last notes on the tonic."""
    ours = report.get("form") or {}
    theirs = (report.get("reference") or {}).get("form") or {}
    rows = []
    for key, label in (
        ("parts_8_or_16_bars", "parts of 8 or 16 bars"),
        ("tonic_endings", "tunes ending on the tonic"),
    ):
        if ours.get(key) is None:
            continue
        value = f"{ours[key]:.1%}"
        if theirs.get(key) is not None:
            value += f" (reference {theirs[key]:.1%})"
        rows.append((label, value))
    return rows


def _reference_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    ref, memo = report["reference"], report["memorisation"]
    rows = [("reference tunes read", _percent(ref["readable"], ref["tunes"]))]
    for name, d in ref["distances"].items():
        label = f"{name.replace('_', ' ')} vs reference"
        rows.append((label, f"overlap {number(d['overlap'], '.3f')}, KL {number(d['kl'], '.4f')}"))
    longest = memo.get("longest") or {}
    rows.append(
        (
            "longest copied run (tokens)",
            f"max {memo['max']}, mean {number(memo['mean'], '.1f')}"
            + (f"; {longest['reference_title']!r}" if longest.get("reference_title") else ""),
        )
    )
    return rows


def _print_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    title = f"{report['tunes']:,} tunes from {', '.join(report['files'])}"
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("statistic")
    table.add_column("value")
    rows = _summary_rows(report)
    if report["reference"] is not None:
        rows += _reference_rows(report)
    for row in rows:
        table.add_row(*row)
    runs = [] if report["memorisation"] is None else [_runs_table(report)]
    print_table(table, *runs)


def _runs_table(report: dict[str, Any]):
    from rich.table import Table

    rows = [r for r in report["per_tune"] if r.get("memorised", {}).get("length")]
    rows.sort(key=lambda r: -r["memorised"]["length"])
    table = Table(title="Longest runs copied from the reference", title_justify="left")
    for column in ("tune", "tokens", "run", "reference tune"):
        table.add_column(column, justify="right" if column in ("tokens", "run") else "left")
    for r in rows[:TOP_RUNS]:
        m = r["memorised"]
        title, ref = r["title"] or r["tune"], m["reference_title"] or m["reference_source"]
        table.add_row(title, f"{r['tokens']:,}", f"{m['length']:,}", ref)
    return table
