"""A corpus's documents as a model reads them: one reader for `tokenize`, `eval` and `music stats`.

A document is a text file read as line-aligned chunks (bounded memory), one tune of a
tunebook (an ABC file, or any text source when the tokenizer reads tunes), or a MIDI file
read whole as bytes (when the tokenizer reads MIDI). Reading every command's sources through
this one module is what makes `genseq eval` score a file as `genseq tokenize` cut it for
training, and `genseq music stats` count the tunes a model was trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from genseq.corpus import Document, SourceHashes, is_midi, iter_chunks, resolve_sources
from genseq.errors import GenseqError
from genseq.music.abc_lexer import RawTune, iter_tunes

TRIM_EVERY_CHUNKS = 32


@dataclass(frozen=True)
class Unit:
    """One document of a corpus: its file, the tune it is when the file is a tunebook, and its
    text (or a MIDI file's bytes) as chunks to be read once."""

    document: Document
    chunks: Iterator[str | bytes]
    tune: RawTune | None = None

    @property
    def name(self) -> str:
        """Where the unit comes from, for summaries: the file, and a tune's line and number."""
        if self.tune is None:
            return self.document.name
        return f"{self.document.name}:{self.tune.line} X:{self.tune.number or '?'}"

    @property
    def whole(self) -> bool:
        """A tune or a MIDI file is encoded in one piece; a text file chunk by chunk."""
        return self.tune is not None or self.document.midi


def iter_units(
    documents: Iterable[Document],
    encoding_errors: str = "strict",
    tunes: bool = False,
    midi: bool = False,
    hashes: SourceHashes | None = None,
) -> Iterator[Unit]:
    """Every unit of ``documents``: each tune of a tunebook (of every text file with
    ``tunes``), a MIDI file's bytes (``midi``: the reader takes MIDI; without it a MIDI file
    is refused), or a text file's chunks. ``hashes`` is fed every byte read."""
    trim = _heap_trimmer()
    for doc in documents:
        feed = hashes.feeder(doc.path) if hashes is not None else None
        if doc.midi:
            yield Unit(doc, iter([_midi_bytes(doc, midi, feed)]))
            continue
        chunks = _trimmed(iter_chunks(doc, encoding_errors, on_block=feed), trim)
        if tunes or doc.tunebook:
            yield from (Unit(doc, iter([tune.text]), tune) for tune in iter_tunes(chunks))
        else:
            yield Unit(doc, chunks)


def _midi_bytes(doc: Document, midi: bool, feed: Callable[[bytes], None] | None) -> bytes:
    if not midi:
        raise GenseqError(
            f"{doc.name} is a MIDI file: read it with --level midi-melody or midi-performance"
        )
    try:
        data = doc.path.read_bytes()
    except OSError as exc:
        raise GenseqError(f"{doc.name}: cannot read ({exc.strerror})") from None
    if feed is not None:
        feed(data)
    return data


# ---------------------------------------------------------------------------------------------
# Tunes and MIDI files, for `genseq music stats`


def holds_midi(sources: list[str]) -> bool:
    """A MIDI file among the sources, or in a directory among them."""
    for source in sources:
        path = Path(source)
        if path.is_file() and is_midi(path):
            return True
        if path.is_dir() and any(is_midi(p) for p in path.rglob("*") if p.is_file()):
            return True
    return False


def read_tunes(sources: list[str], encoding_errors: str = "strict") -> list[tuple[str, RawTune]]:
    """Every tune of every source, with the name of its file; a directory gives its ``.abc``
    files, and any file named directly (or standard input) is read as a tunebook."""
    corpus = resolve_sources(sources, glob="*.abc", encoding_errors=encoding_errors)
    try:
        units = iter_units(corpus.documents, encoding_errors, tunes=True)
        return [(unit.document.name, unit.tune) for unit in units]
    finally:
        corpus.close()


def read_music(
    sources: list[str], encoding_errors: str = "strict"
) -> list[tuple[str, bytes | str]]:
    """MIDI files as bytes and ABC tunes as text, named by file (and a tune's line); a file
    in a directory that is neither MIDI nor a tunebook is left out."""
    corpus = resolve_sources(sources, encoding_errors=encoding_errors)
    try:
        named = {"<stdin>", *sources}
        kept = (d for d in corpus.documents if d.midi or d.tunebook or d.name in named)
        return [_named(unit) for unit in iter_units(kept, encoding_errors, tunes=True, midi=True)]
    finally:
        corpus.close()


def _named(unit: Unit) -> tuple[str, bytes | str]:
    data = next(unit.chunks)
    if unit.tune is None:
        return unit.document.name, data
    return f"{unit.document.name}:{unit.tune.line}", data


# ---------------------------------------------------------------------------------------------
# Memory


def _heap_trimmer() -> Callable[[], object]:
    """A function that hands freed heap memory back to the system (glibc), else a no-op.

    Each chunk allocates megabyte-sized temporaries of varying sizes; glibc's adaptive mmap
    threshold then serves them from a heap that fragments, and peak memory crept up with corpus
    size (547 MB for 1 GB; BENCHMARKS.md). ``malloc_trim`` every few chunks keeps it flat
    without changing the allocator's behaviour for the rest of the process (training).
    """
    import ctypes
    import ctypes.util

    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


def _trimmed(chunks: Iterator[str], trim: Callable[[], object]) -> Iterator[str]:
    for n, chunk in enumerate(chunks, 1):
        if n % TRIM_EVERY_CHUNKS == 0:
            trim()
        yield chunk
