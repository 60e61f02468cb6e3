"""`genseq eval`: held-out loss of a checkpoint on files (nats/token, perplexity, bits/char)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from genseq.commands._common import (
    DeviceOpt,
    EncodingErrorsOpt,
    JsonOpt,
    QuietOpt,
    number,
    out_console,
    print_json,
)


def evaluate(
    checkpoint: Annotated[
        Path, typer.Argument(help="A run directory or checkpoint directory.", show_default=False)
    ],
    files: Annotated[
        list[str],
        typer.Argument(
            help="Text files, directories, corpus names or - for standard input.",
            show_default=False,
        ),
    ],
    device: DeviceOpt = "cpu",
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

    import tempfile

    import numpy as np

    from genseq.checkpoint import load_checkpoint
    from genseq.corpus import resolve_sources
    from genseq.data import TokenFileWriter, dtype_for_vocab, read_tokens
    from genseq.device import resolve_device
    from genseq.errors import GenseqError
    from genseq.evaluate import EvalResult, evaluate_tokens
    from genseq.tokenization import SkipDocument

    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint, dev)
    tok = ckpt.tokenizer
    midi = getattr(tok, "reads_midi", False)
    corpus = resolve_sources(files, encoding_errors=encoding_errors)
    rows = []
    total = EvalResult(0.0, 0)
    total_chars = 0
    try:
        for doc in corpus.documents:
            # Ids go to a temporary token file, read back as a memmap: memory stays bounded.
            with tempfile.TemporaryDirectory(prefix="genseq-eval-") as tmp:
                dtype = dtype_for_vocab(tok.vocab_size)
                writer = TokenFileWriter(Path(tmp) / "ids.bin", dtype)
                writer.write(np.array([tok.eos_id], dtype=np.int64))
                chars = unknown = tunes = skipped = notes = 0
                for chunk in _pieces(doc, tok, encoding_errors):
                    chars += len(chunk)
                    if not tok.splits_tunes:
                        part = tok.encode_chunk(chunk)
                    else:
                        try:
                            part = tok.encode_document(chunk)
                        except SkipDocument:
                            skipped += 1
                            continue
                        part = np.append(part, tok.eos_id)
                        tunes += 1
                        if midi:
                            notes += tok.note_count(part)
                    unknown += int((part == tok.unk_id).sum())
                    writer.write(part)
                writer.close()
                if chars == 0:
                    raise GenseqError(f"{doc.name}: empty file, nothing to evaluate")
                if tok.splits_tunes and tunes == 0:
                    what = "MIDI notes or tunes" if midi else "tunes"
                    raise GenseqError(f"{doc.name}: no readable {what} to evaluate")
                ids = read_tokens(Path(tmp) / "ids.bin", dtype)
                result = evaluate_tokens(ckpt.model, ids, dev)
                del ids
            rows.append(
                {
                    "file": doc.name,
                    "tokens": result.tokens,
                    "characters": chars,
                    "loss": result.loss,
                    "perplexity": result.perplexity,
                    "bits_per_character": result.bits_per_character(chars),
                    "unknown_tokens": unknown,
                    **(
                        {
                            "tunes": tunes,
                            "skipped_tunes": skipped,
                            "nats_per_tune": result.nats / tunes,
                        }
                        if tok.splits_tunes
                        else {}
                    ),
                    **(
                        {"notes": notes, "nats_per_note": result.nats / max(notes, 1)}
                        if midi
                        else {}
                    ),
                }
            )
            total = EvalResult(total.nats + result.nats, total.tokens + result.tokens)
            total_chars += chars
    finally:
        corpus.close()
    summary = {
        "file": "TOTAL",
        "tokens": total.tokens,
        "characters": total_chars,
        "loss": total.loss,
        "perplexity": total.perplexity,
        "bits_per_character": total.bits_per_character(total_chars),
        "unknown_tokens": sum(r["unknown_tokens"] for r in rows),
    }
    if tok.splits_tunes:
        tunes = sum(r["tunes"] for r in rows)
        summary |= {
            "tunes": tunes,
            "skipped_tunes": sum(r["skipped_tunes"] for r in rows),
            "nats_per_tune": total.nats / tunes,
        }
    if midi:
        notes = sum(r["notes"] for r in rows)
        summary |= {"notes": notes, "nats_per_note": total.nats / max(notes, 1)}
    if json_out:
        for row in [*rows, summary] if len(rows) > 1 else rows:
            print_json({"schema": 1, "checkpoint": str(ckpt.path), **row})
        return
    if quiet:
        return
    from rich.table import Table

    table = Table(title=f"{ckpt.path} ({tok.describe()})", title_justify="left")
    columns = ["file", "tokens", "nats/token", "perplexity", "bits/char", "<unk>"]
    if tok.splits_tunes:
        columns[2:2] = ["tunes", "nats/tune"]
    if midi:
        columns[4:4] = ["nats/note"]
    for column in columns:
        table.add_column(column, justify="left" if column == "file" else "right")
    for row in [*rows, summary] if len(rows) > 1 else rows:
        tune_cells = []
        if tok.splits_tunes:
            skipped = f" ({row['skipped_tunes']:,} skipped)" if row["skipped_tunes"] else ""
            tune_cells = [f"{row['tunes']:,}{skipped}", f"{row['nats_per_tune']:.1f}"]
        if midi:
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
    out_console().print(table)


def _pieces(doc, tok, encoding_errors: str):
    """A file's line-aligned chunks, or its tunes for a level that reads tunebooks."""
    from genseq.corpus import iter_chunks
    from genseq.music.abc_lexer import iter_tunes

    if getattr(tok, "reads_midi", False) and doc.midi:
        from genseq.errors import GenseqError

        try:
            return iter([doc.path.read_bytes()])
        except OSError as exc:
            raise GenseqError(f"{doc.name}: cannot read ({exc.strerror})") from None
    chunks = iter_chunks(doc, encoding_errors)
    if tok.splits_tunes:
        return (tune.text for tune in iter_tunes(chunks))
    return chunks
