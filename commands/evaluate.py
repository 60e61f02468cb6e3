"""`genseq eval`: held-out loss of a checkpoint on files (nats/token, perplexity, bits/char)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from genseq.commands._common import (
    DeviceOpt,
    EncodingErrorsOpt,
    JsonOpt,
    QuietOpt,
    number,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from rich.table import Table

    from genseq.tokenization import Tokenizer


def evaluate(
    checkpoint: Annotated[
        str,
        typer.Argument(
            help="A run or checkpoint directory, or a shipped model's name (genseq models list).",
            show_default=False,
        ),
    ],
    files: Annotated[
        list[str],
        typer.Argument(
            help="Text files, directories, corpus names or - for standard input.",
            show_default=False,
        ),
    ],
    device: DeviceOpt = "auto",
    encoding_errors: EncodingErrorsOpt = "strict",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Measure how well a model predicts text it was not trained on.

    Each document is read as it is in training (after <eos>), so every character is predicted.
    Bits per character divide the same total by the characters, which compares models across
    tokenizations. For ABC models every tune is a document, and nats per tune (each tune's
    tokens and its end) compare models across ABC tokenizations; unreadable tunes are skipped.
    MIDI models read MIDI files (each one a document) and ABC tunes, and add nats per note,
    which compares the melody and performance encodings.
    """

    from genseq.checkpoint import load_checkpoint
    from genseq.device import resolve_device
    from genseq.evaluate import evaluate_files, total

    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint, dev)
    tok = ckpt.tokenizer
    scores = evaluate_files(ckpt.model, tok, files, dev, encoding_errors)
    rows = [score.as_dict() for score in scores]
    if len(rows) > 1:
        rows.append(total(scores).as_dict())
    if json_out:
        for row in rows:
            print_json({"schema": 1, "checkpoint": str(ckpt.path), **row})
    elif not quiet:
        print_table(_table(f"{ckpt.path} ({tok.describe()})", tok, rows))


def _table(title: str, tok: Tokenizer, rows: list[dict]) -> Table:
    """The rows as a table, with the tune and note columns of the model's level."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    columns = ["file", "tokens", "nats/token", "perplexity", "bits/char", "<unk>"]
    if tok.splits_tunes:
        columns[2:2] = ["tunes", "nats/tune"]
    if tok.reads_midi:
        columns[4:4] = ["nats/note"]
    for column in columns:
        table.add_column(column, justify="left" if column == "file" else "right")
    for row in rows:
        tune_cells = []
        if tok.splits_tunes:
            skipped = f" ({row['skipped_tunes']:,} skipped)" if row["skipped_tunes"] else ""
            tune_cells = [f"{row['tunes']:,}{skipped}", f"{row['nats_per_tune']:.1f}"]
        if tok.reads_midi:
            tune_cells.append(f"{row['nats_per_note']:.3f}")
        table.add_row(
            row["file"],
            f"{row['tokens']:,}",
            *tune_cells,
            f"{row['loss']:.4f}",
            number(row["perplexity"], ".2f" if row["perplexity"] < 1e6 else ".3e"),
            f"{row['bits_per_character']:.4f}",
            f"{row['unknown_tokens']:,}",
        )
    return table
