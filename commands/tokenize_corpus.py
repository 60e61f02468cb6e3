"""`genseq tokenize`: corpus -> tokenizer.json + train.bin/val.bin + meta.json.

(Named tokenize_corpus.py so that it never shadows the standard library's ``tokenize``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from genseq.commands._common import (
    CacheDirOpt,
    EncodingErrorsOpt,
    JsonOpt,
    QuietOpt,
    err_console,
    options_for,
    print_json,
    refuse_stdout,
)
from genseq.commands.choices import Level, Split, TokenDtype

LevelOpt = Annotated[
    Level,
    typer.Option(
        "--level",
        help="char | word | bpe | abc (one token per musical symbol) | midi-melody (one "
        "event per grid step) | midi-performance (note on/off, time shift, velocity events); "
        "auto: midi-melody for MIDI files, abc for ABC tunebooks, else char.",
    ),
]
ChordsOpt = Annotated[bool, typer.Option("--abc-chords", help="ABC: keep chord symbols.")]
DecorationsOpt = Annotated[
    bool, typer.Option("--abc-decorations", help="ABC: keep decorations (!trill!, ~).")
]
GraceOpt = Annotated[bool, typer.Option("--abc-grace", help="ABC: keep grace notes.")]
KeepUnitOpt = Annotated[
    bool,
    typer.Option(
        "--abc-keep-unit", help="ABC: keep each tune's L: (default: durations in eighths)."
    ),
]
TransposeOpt = Annotated[
    str | None,
    typer.Option(
        "--transpose",
        help="ABC: move every tune to this tonic (C, D, Bb...), keeping its mode.",
        show_default=False,
    ),
]
AugmentOpt = Annotated[
    int,
    typer.Option(
        "--augment-keys",
        help="ABC and MIDI: add N transposed copies (+1, -1, +2... semitones) of every "
        "training tune or file.",
    ),
]
StepsPerQuarterOpt = Annotated[
    int | None,
    typer.Option(
        "--steps-per-quarter",
        help="midi-melody: grid steps per quarter note [default: 4, sixteenth notes].",
        show_default=False,
    ),
]
PitchRangeOpt = Annotated[
    str | None,
    typer.Option(
        "--pitch-range",
        help="midi-melody: MIDI pitches LOW-HIGH, e.g. 48-84 (Magenta's); melodies outside are "
        "moved by octaves [default: auto, the corpus's lowest to highest pitch].",
        show_default=False,
    ),
]
MidiTrackOpt = Annotated[
    str | None,
    typer.Option(
        "--midi-track",
        help="MIDI: learn this track (its name, or its index among the tracks with notes, "
        "from 0) instead of the highest part.",
        show_default=False,
    ),
]
MidiProgramOpt = Annotated[
    int | None,
    typer.Option(
        "--midi-program",
        help="MIDI: learn the parts played by this General MIDI program (0-127).",
        show_default=False,
    ),
]
VocabOpt = Annotated[
    int | None,
    typer.Option(
        "--vocab-size",
        help="Cap the vocabulary (word default 20000, bpe 4096); "
        "rarer words or characters become <unk>.",
        show_default=False,
    ),
]
MinFreqOpt = Annotated[
    int | None,
    typer.Option(
        "--min-frequency",
        help="Drop tokens seen fewer times (word/char default 1, bpe 2).",
        show_default=False,
    ),
]
LowercaseOpt = Annotated[bool, typer.Option("--lowercase", help="Lowercase all text first.")]
ValFractionOpt = Annotated[
    float, typer.Option("--val-fraction", help="Share held out for validation.")
]
SplitOpt = Annotated[
    Split,
    typer.Option(
        "--split",
        help="position (the end of the text), document (whole files drawn "
        "with --seed) or auto (document for 10+ files).",
    ),
]
GlobOpt = Annotated[str, typer.Option("--glob", help="Files to read from directories.")]
DtypeOpt = Annotated[TokenDtype, typer.Option("--dtype", help="Token file type.")]
WorkersOpt = Annotated[
    int, typer.Option("--workers", help="Processes that encode in parallel (memory stays bounded).")
]

FitSampleOpt = Annotated[
    float | None,
    typer.Option(
        "--fit-sample",
        help="word, bpe: learn the vocabulary from this many MB of text, spread evenly over a "
        "larger corpus; all of it is still encoded. 0: learn from all of it [default: 64].",
        show_default=False,
    ),
]


ValOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--val",
        help="Validate on these files, directories or corpus names (repeat --val for more): "
        "all of them and nothing else is the validation split (no --val-fraction or --split); "
        "the vocabulary is learnt from the training SOURCES only.",
        show_default=False,
    ),
]


def run_tokenize(
    sources: list[str],
    output: Path,
    options,
    glob: str,
    cache_dir: Path | None,
    quiet: bool,
    val: list[str] | None = None,
    overwrite: bool = True,
):
    """Tokenize SOURCES into OUTPUT and show the summary; shared with `genseq train SOURCE`.
    ``val`` (--val): sources that are the whole validation split; ``overwrite``: an existing
    data directory at OUTPUT may be replaced."""
    from genseq.corpus import resolve_sources
    from genseq.errors import UsageError
    from genseq.prepare import tokenize_corpus
    from genseq.tokenization import LEVELS

    if options.level != "auto" and options.level not in LEVELS:
        raise UsageError(f"--level must be auto or one of {', '.join(LEVELS)}")
    options.validate()
    console = err_console()
    if val and "-" in val and "-" in sources:
        raise UsageError("standard input (-) can be the training or the --val source, not both")
    corpus = resolve_sources(sources, glob, cache_dir, options.encoding_errors)
    val_corpus = None
    try:
        if val:
            val_corpus = resolve_sources(val, glob, cache_dir, options.encoding_errors)
        say = None if quiet else (lambda msg: console.print(f"[dim]{msg}[/dim]"))
        summary = tokenize_corpus(
            corpus, output, options, overwrite, progress=say, val_corpus=val_corpus
        )
    finally:
        corpus.close()
        if val_corpus is not None:
            val_corpus.close()
    if not quiet:
        show_summary(console, summary, output)
    return summary


def show_summary(console, summary, output: Path) -> None:
    from rich.table import Table

    table = Table(title=f"tokenized into {output}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    kinds = {"abc": "tunes", "midi-melody": "melodies", "midi-performance": "performances"}
    kind = kinds.get(summary.level, "documents")
    table.add_row(kind, f"{summary.documents:,}")
    if summary.skipped:
        reasons = "; ".join(
            f"{n:,} {reason} (e.g. {example})" for reason, n, example in summary.skip_reasons[:5]
        )
        more = len(summary.skip_reasons) - 5
        table.add_row(
            "skipped",
            f"{summary.skipped:,}: {reasons}" + (f"; {more} more reasons" if more > 0 else ""),
        )
    size = "bytes and characters" if summary.level.startswith("midi") else "characters"
    table.add_row(size, f"{summary.characters:,}")  # MIDI files count bytes, ABC characters
    table.add_row(
        "tokens",
        f"{summary.tokens:,} ({summary.train_tokens:,} train, "
        f"{summary.val_tokens:,} validation, split by {summary.split})",
    )
    if summary.val_sources:
        table.add_row("validation from", ", ".join(summary.val_sources))
        table.add_row(
            "unknown in validation",
            f"{summary.val_unknown_tokens:,} ({summary.val_unknown_rate:.2%}; the vocabulary "
            "comes from the training sources only)",
        )
    table.add_row("vocabulary", f"{summary.vocab_size:,} ({summary.level} level)")
    if summary.fit_share < 1:
        table.add_row("vocabulary from", f"{summary.fit_share:.1%} of the text (--fit-sample)")
    table.add_row("unknown tokens", f"{summary.unknown_tokens:,} ({summary.unknown_rate:.2%})")
    top = ", ".join(f"{tok!r} {n:,}" for tok, n in summary.top_tokens[:10])
    table.add_row("most frequent", top)
    table.add_row("time", f"{summary.seconds:.1f} s")
    console.print(table)


def tokenize(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Files, directories, corpus names (`genseq corpus list`) or - for standard input.",
            show_default=False,
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The data directory to write.")],
    level: LevelOpt = "auto",
    vocab_size: VocabOpt = None,
    min_frequency: MinFreqOpt = None,
    lowercase: LowercaseOpt = False,
    val_fraction: ValFractionOpt = 0.1,
    val: ValOpt = None,
    split: SplitOpt = "auto",
    glob: GlobOpt = "*",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the document split.")] = 42,
    dtype: DtypeOpt = "auto",
    workers: WorkersOpt = 1,
    fit_sample: FitSampleOpt = None,
    abc_chords: ChordsOpt = False,
    abc_decorations: DecorationsOpt = False,
    abc_grace: GraceOpt = False,
    abc_keep_unit: KeepUnitOpt = False,
    transpose: TransposeOpt = None,
    augment_keys: AugmentOpt = 0,
    steps_per_quarter: StepsPerQuarterOpt = None,
    pitch_range: PitchRangeOpt = None,
    midi_track: MidiTrackOpt = None,
    midi_program: MidiProgramOpt = None,
    encoding_errors: EncodingErrorsOpt = "strict",
    cache_dir: CacheDirOpt = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing data directory at -o.")
    ] = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Build a tokenizer from a corpus and write its token ids for training.

    ABC tunebooks (.abc files, `folk-abc`) are read at the abc level by default: one token per
    musical symbol, one document per tune; tunes that cannot be read are skipped and listed.
    MIDI files (.mid, .midi) are read at the midi-melody level by default (the highest part's
    top voice on a sixteenth-note grid); --level midi-performance keeps every note, with
    timing and velocity. Both MIDI levels also read ABC tunes. Unreadable files are skipped
    and listed.
    """
    from dataclasses import asdict

    from genseq.prepare import TokenizeOptions

    refuse_stdout(output, "tokenize writes a data directory")
    options = options_for(TokenizeOptions, locals(), fit_sample_mb=fit_sample)
    summary = run_tokenize(sources, output, options, glob, cache_dir, quiet, val, overwrite)
    if json_out:
        print_json(
            {
                "schema": 1,
                "data": str(output),
                **asdict(summary),
                "unknown_rate": summary.unknown_rate,
            }
        )
