"""Corpus -> tokenizer -> token files: what `genseq tokenize` does.

Two streaming passes over the documents: the first fits the tokenizer (and hashes the sources),
the second encodes and appends ids to the split files. Every document is preceded and followed
by ``<eos>``, so models learn where documents start and end and samples can begin from
``<eos>``. A document is a file, or one tune of a tunebook (an ABC file, or any source at the
``abc`` level); a MIDI file (at the ``midi-*`` levels, which also read ABC tunes) is one
document, read whole as bytes. A document the tokenizer cannot read is skipped and its reason
counted. The
validation split is the last ``val_fraction`` of the token stream (nanoGPT's split) for a
single text, or whole documents drawn with the seed when the corpus has many.
The directory is built beside its target and swapped in only when complete.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from genseq import __version__
from genseq.background import Background
from genseq.corpus import Corpus, Document, SourceHashes
from genseq.data import DATA_FORMAT, DATA_SCHEMA, TokenFileWriter, dtype_for_vocab, is_data_dir
from genseq.documents import iter_units
from genseq.errors import GenseqError, UsageError
from genseq.fileio import atomic_write_text, replace_dir, staging_dir
from genseq.jsonable import jsonable
from genseq.tokenization import LEVELS, MIDI_LEVELS, SkipDocument, Tokenizer, new_tokenizer

MIN_DOCUMENTS_FOR_DOCUMENT_SPLIT = 10
# The word and BPE vocabularies are learned from at most this many MB of text, spread evenly
# over a larger corpus (SentencePiece's ``input_sentence_size`` does the same): counting is
# half of tokenizing at these levels, and the most frequent words or merges of a large sample
# are those of the whole corpus. Every byte is still encoded and hashed. 0: fit on it all.
DEFAULT_FIT_SAMPLE_MB = 64.0
COPY_BLOCK = 1 << 22


@dataclass
class TokenizeOptions:
    level: str = "auto"  # auto: midi-melody with MIDI files, abc for tunebooks, else char
    vocab_size: int | None = None
    min_frequency: int | None = None
    lowercase: bool = False
    val_fraction: float = 0.1
    split: str = "auto"  # auto | position | document
    seed: int = 42
    dtype: str = "auto"
    encoding_errors: str = "strict"
    workers: int = 1  # processes that encode chunks in parallel
    fit_sample_mb: float | None = None  # word, bpe: fit on this much text (None: default, 0: all)
    # abc level
    abc_chords: bool = False  # keep chord symbols ("Am")
    abc_decorations: bool = False  # keep decorations (!trill!, ~)
    abc_grace: bool = False  # keep grace notes ({g})
    abc_keep_unit: bool = False  # keep each tune's L: instead of rewriting durations in 1/8
    transpose: str | None = None  # move every tune to this tonic (mode kept)
    augment_keys: int = 0  # add this many transposed copies of every training tune (abc, midi)
    # midi levels
    steps_per_quarter: int | None = None  # midi-melody grid steps per quarter note (4)
    pitch_range: str | None = None  # midi-melody "LOW-HIGH" MIDI pitches (auto: the corpus's)
    midi_track: str | None = None  # learn this track (name or 0-based index)
    midi_program: int | None = None  # learn the parts with this General MIDI program

    def validate(self) -> None:
        if not 0.0 <= self.val_fraction <= 0.5:
            raise UsageError("--val-fraction must be between 0 and 0.5")
        if self.split not in ("auto", "position", "document"):
            raise UsageError("--split must be auto, position or document")
        if self.vocab_size is not None and self.vocab_size < 3:
            raise UsageError("--vocab-size must be at least 3")
        if self.min_frequency is not None and self.min_frequency < 1:
            raise UsageError("--min-frequency must be at least 1")
        if self.encoding_errors not in ("strict", "replace", "ignore"):
            raise UsageError("--encoding-errors must be strict, replace or ignore")
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        if self.fit_sample_mb is not None and not 0 <= self.fit_sample_mb < 1e9:
            raise UsageError("--fit-sample must be a number of MB, 0 or more (0: the whole corpus)")
        if self.level != "auto" and self.level not in LEVELS:
            raise UsageError(f"--level must be auto or one of {', '.join(LEVELS)}")
        if self.augment_keys < 0 or self.augment_keys > 11:
            raise UsageError("--augment-keys must be between 0 and 11")
        if self.transpose is not None:
            import re

            if not re.fullmatch(r"[A-Ga-g][#b]?", self.transpose):
                raise UsageError("--transpose takes a tonic such as C, D, F# or Bb")
        if self.steps_per_quarter is not None and not 1 <= self.steps_per_quarter <= 96:
            raise UsageError("--steps-per-quarter must be between 1 and 96")
        if self.pitch_range is not None:
            self.pitch_bounds()
        if self.midi_program is not None and not 0 <= self.midi_program <= 127:
            raise UsageError("--midi-program must be between 0 and 127")
        if self.level != "auto":
            self.check_level(self.level)

    def pitch_bounds(self) -> tuple[int, int] | None:
        """``--pitch-range LOW-HIGH`` as numbers; None (the corpus's range) for auto."""
        import re

        if self.pitch_range is None or self.pitch_range.strip() == "auto":
            return None
        m = re.fullmatch(r"\s*(\d{1,3})\s*-\s*(\d{1,3})\s*", self.pitch_range)
        if not m or not (0 <= int(m[1]) and int(m[1]) + 11 <= int(m[2]) <= 127):
            raise UsageError(
                "--pitch-range takes LOW-HIGH MIDI pitches, at least an octave apart within "
                "0-127, e.g. 48-84"
            )
        return int(m[1]), int(m[2])

    def check_level(self, level: str) -> None:
        """Refuse options that the level (given or chosen by auto) would ignore."""
        if level in MIDI_LEVELS and self.transpose is not None:
            raise UsageError(
                "--transpose moves ABC tunes to one tonic; at the midi levels, "
                "--augment-keys N adds transposed copies of every training piece"
            )
        if level != "abc" and self.has_abc_options:
            raise UsageError(
                f"the ABC options (--abc-*, --transpose) need --level abc; these sources read "
                f"at the {level} level"
            )
        if self.augment_keys and level not in ("abc", *MIDI_LEVELS):
            raise UsageError(f"--augment-keys needs an abc or midi level, not {level}")
        melody = self.steps_per_quarter is not None or self.pitch_bounds() is not None
        if melody and level != "midi-melody":
            raise UsageError(
                f"--steps-per-quarter and --pitch-range need --level midi-melody, not {level}"
            )
        if (self.midi_track is not None or self.midi_program is not None) and (
            level not in MIDI_LEVELS
        ):
            raise UsageError(
                f"--midi-track and --midi-program need a midi level, not {level} "
                "(--level midi-melody or midi-performance)"
            )

    def fit_share(self, tokenizer: Tokenizer, corpus_bytes: int) -> float:
        """The share of the corpus's chunks the tokenizer is fitted on (1: all of them)."""
        mb = DEFAULT_FIT_SAMPLE_MB if self.fit_sample_mb is None else self.fit_sample_mb
        if not tokenizer.fit_may_sample or mb == 0 or corpus_bytes <= 0:
            return 1.0
        return min(1.0, mb * 1e6 / corpus_bytes)

    @property
    def has_abc_options(self) -> bool:
        abc_only = (self.abc_chords, self.abc_decorations, self.abc_grace, self.abc_keep_unit)
        return any(abc_only) or self.transpose is not None

    def resolved_level(self, corpus: Corpus) -> str:
        """``auto``: midi-melody when MIDI files come alone or with tunebooks, abc for a corpus
        of tunebooks (ABC files, ABC corpora), else char."""
        if self.level != "auto":
            return self.level
        docs = corpus.documents
        if any(d.midi for d in docs) and all(d.midi or d.tunebook for d in docs):
            return "midi-melody"
        return "abc" if docs and all(d.tunebook for d in docs) else "char"

    def tokenizer_options(self, level: str) -> dict:
        extra: dict = {"lowercase": self.lowercase}
        if self.vocab_size is not None:
            extra["vocab_size"] = self.vocab_size
        if self.min_frequency is not None:
            extra["min_frequency"] = self.min_frequency
        if level == "abc":
            extra.update(
                chords=self.abc_chords,
                decorations=self.abc_decorations,
                grace=self.abc_grace,
                normalise_unit=not self.abc_keep_unit,
                transpose=self.transpose,
                augment_keys=self.augment_keys,
            )
        if level in MIDI_LEVELS:
            extra.update(
                track=self.midi_track, program=self.midi_program, augment_keys=self.augment_keys
            )
        if level == "midi-melody":
            extra.update(
                steps_per_quarter=self.steps_per_quarter or 4, pitch_range=self.pitch_bounds()
            )
        return extra


@dataclass
class TokenizeSummary:
    documents: int = 0
    characters: int = 0
    tokens: int = 0
    train_tokens: int = 0
    val_tokens: int = 0
    vocab_size: int = 0
    unknown_tokens: int = 0
    split: str = "position"
    level: str = "char"
    skipped: int = 0  # documents (tunes) the tokenizer could not read
    skip_reasons: list[tuple[str, int, str]] = field(default_factory=list)  # reason, n, example
    fit_share: float = 1.0  # the share of the characters the vocabulary was learned from
    top_tokens: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0
    val_sources: list[str] = field(default_factory=list)  # --val files: the validation split
    val_unknown_tokens: int = 0  # validation tokens outside the vocabulary (--val files)

    @property
    def unknown_rate(self) -> float:
        return self.unknown_tokens / max(self.tokens, 1)

    @property
    def val_unknown_rate(self) -> float:
        return self.val_unknown_tokens / max(self.val_tokens, 1)


def _units(
    docs: list[Document],
    errors: str,
    tunes_everywhere: bool,
    midi: bool = False,
    hashes: SourceHashes | None = None,
) -> Iterator[tuple[str, bool, Iterator[str | bytes]]]:
    """``(name, whole, chunks)`` of every document, as ``genseq.documents`` reads them."""
    for unit in iter_units(docs, errors, tunes=tunes_everywhere, midi=midi, hashes=hashes):
        yield unit.name, unit.whole, unit.chunks


def _tagged_chunks(
    units: Iterator[tuple[str, bool, Iterator[str]]], val_units: set[int]
) -> Iterator[tuple[int, str, bool, bool]]:
    """``(unit index, text, whole document?, training?)`` for the encoder."""
    for i, (_name, whole, chunks) in enumerate(units):
        for chunk in chunks:
            yield i, chunk, whole, i not in val_units


def _encode_item(
    tokenizer, item: tuple[int, str, bool, bool]
) -> tuple[int, list[np.ndarray] | str]:
    """Ids of a chunk or a whole tune, then of a training tune's augmented copies; a tune that
    cannot be read gives its reason instead."""
    index, text, whole, training = item
    if not whole:
        return index, [tokenizer.encode_chunk(text)]
    try:
        if training:
            return index, tokenizer.encode_training_document(text)
        return index, [tokenizer.encode_document(text)]
    except SkipDocument as exc:
        return index, str(exc)


_worker_tokenizer = None


def _init_worker(level: str, tokenizer_json: str, settings: dict) -> None:
    """Rebuild the parent's tokenizer: its vocabulary file and ``Tokenizer.settings()``."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one thread per worker process
    global _worker_tokenizer
    _worker_tokenizer = LEVELS[level].from_json(tokenizer_json, **settings)


def _encode_in_worker(item: tuple[int, str, bool, bool]) -> tuple[int, list[np.ndarray] | str]:
    index, ids = _encode_item(_worker_tokenizer, item)
    if isinstance(ids, str):
        return index, ids
    small = np.uint16 if _worker_tokenizer.vocab_size <= 2**16 else np.uint32
    return index, [part.astype(small) for part in ids]  # a quarter of the bytes through the pipe


def encode_chunks(
    tokenizer, chunks: Iterator[tuple[int, str, bool, bool]], workers: int
) -> Iterator[tuple[int, list[np.ndarray] | str]]:
    """Encode ``(document, chunk, ...)`` items in order, in ``workers`` processes when asked.

    At most ``2 x workers`` chunks are in flight, so memory stays bounded whatever the corpus
    size; results come back in the order the chunks were read.
    """
    if workers <= 1:
        for item in chunks:
            yield _encode_item(tokenizer, item)
        return
    import multiprocessing
    import threading

    slots = threading.Semaphore(2 * workers)
    stop = threading.Event()

    def bounded() -> Iterator[tuple[int, str, bool, bool]]:
        for item in chunks:
            while not slots.acquire(timeout=0.1):  # wakes up to notice a stop
                if stop.is_set():
                    return
            if stop.is_set():
                return
            yield item

    context = multiprocessing.get_context("spawn")  # no fork of a threaded tokenizer
    rebuild = (tokenizer.level, tokenizer.to_json(), tokenizer.settings())
    pool = context.Pool(workers, _init_worker, rebuild)
    try:
        for result in pool.imap(_encode_in_worker, bounded()):
            slots.release()
            yield result
    finally:  # also on Ctrl-C: let the feeder thread end, then stop the workers
        stop.set()
        pool.terminate()
        pool.join()


def tokenize_corpus(
    corpus: Corpus,
    out_dir: Path,
    options: TokenizeOptions,
    overwrite: bool = True,
    progress: Callable[[str], None] | None = None,
    val_corpus: Corpus | None = None,
) -> TokenizeSummary:
    """Tokenize ``corpus`` into the data directory ``out_dir`` and return its summary.

    ``val_corpus`` (``--val FILE``) is the validation split, whole: ``corpus`` is all training
    and the vocabulary is learnt from ``corpus`` alone, so validation text outside it counts
    as unknown tokens, as it would for any text the model meets later.
    """
    if val_corpus is not None and options.split != "auto":
        raise UsageError(f"--val gives the validation split; drop --split {options.split}")
    background = Background()  # hashes the sources as pass 1 reads them
    hashes = SourceHashes(background)
    try:
        return _tokenize(corpus, out_dir, options, overwrite, progress, hashes, val_corpus)
    finally:
        background.close()


def _tokenize(
    corpus: Corpus,
    out_dir: Path,
    options: TokenizeOptions,
    overwrite: bool,
    progress: Callable[[str], None] | None,
    hashes: SourceHashes,
    val_corpus: Corpus | None = None,
) -> TokenizeSummary:
    options.validate()
    out_dir = Path(out_dir)
    if out_dir.exists() and not is_data_dir(out_dir):
        if out_dir.is_file() or any(out_dir.iterdir()):
            raise GenseqError(
                f"{out_dir} exists and is not a genseq data directory; choose another -o"
            )
    if out_dir.exists() and not overwrite:
        raise GenseqError(f"{out_dir} already holds token data; pass --overwrite to replace it")
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    docs = corpus.documents
    errors = options.encoding_errors
    level = options.resolved_level(corpus)
    options.check_level(level)

    # Pass 1: fit the tokenizer, count characters and documents (files or tunes).
    tokenizer = new_tokenizer(level, **options.tokenizer_options(level))
    tunes_everywhere = tokenizer.splits_tunes
    midi = tokenizer.reads_midi
    share = options.fit_share(tokenizer, sum(doc.path.stat().st_size for doc in docs))
    sample = "" if share == 1 else f" ({share:.1%} of the text, evenly spread: --fit-sample)"
    say(f"fitting the {level} tokenizer on {len(docs):,} file(s){sample}")
    characters = fitted = 0
    names: list[str] = []

    def counted() -> Iterator[str]:
        """Every chunk is read and counted; the fit gets ``share`` of them, evenly spaced
        (a credit of ``share`` per chunk, a chunk for each whole credit; the first always)."""
        nonlocal characters, fitted
        credit = 1.0
        for name, _whole, chunks in _units(docs, errors, tunes_everywhere, midi, hashes):
            names.append(name)
            for chunk in chunks:
                characters += len(chunk)
                if credit >= 1.0:
                    credit -= 1.0
                    fitted += len(chunk)
                    yield chunk
                credit += share

    tokenizer.fit(counted())
    if not names and tunes_everywhere:
        what = "MIDI files or tunes" if midi else "tunes"
        raise GenseqError(
            f"no {what} found (a tune starts at an X: line) in " + ", ".join(corpus.sources)
        )
    if characters == 0:
        raise GenseqError("the corpus is empty: no text in " + ", ".join(corpus.sources))
    vocab_size = tokenizer.vocab_size
    dtype = dtype_for_vocab(vocab_size, options.dtype)

    n_train_units, train_characters = len(names), characters
    val_documents = [] if val_corpus is None else val_corpus.documents
    if val_documents:
        for name, _whole, chunks in _units(val_documents, errors, tunes_everywhere, midi):
            names.append(name)
            characters += sum(len(chunk) for chunk in chunks)
        if characters == train_characters:
            raise GenseqError("--val: no text or tunes in " + ", ".join(val_corpus.sources))
    n_units = len(names)
    split = "files" if val_documents else options.split
    if split == "auto":
        many = n_units >= MIN_DOCUMENTS_FOR_DOCUMENT_SPLIT and not corpus.single_stream
        split = "document" if many else "position"
    val_docs = set(range(n_train_units, n_units))  # --val files: every one of their units
    if split == "document" and options.val_fraction > 0:
        if n_units < 2:
            raise UsageError("--split document needs at least two documents")
        n_val = min(n_units - 1, max(1, round(options.val_fraction * n_units)))
        order = np.random.default_rng(options.seed).permutation(n_units)
        val_docs = {int(i) for i in order[:n_val]}

    # Pass 2: encode into the split files inside a staging directory.
    say(f"encoding {characters:,} characters")
    staging = staging_dir(out_dir)
    try:
        train = TokenFileWriter(staging / "train.bin", dtype)
        val = TokenFileWriter(staging / "val.bin", dtype)
        known_counts = tokenizer.fit_id_counts  # the fit's count of this same text, if any
        counts = np.zeros(vocab_size, dtype=np.int64)
        if known_counts is not None:
            counts += known_counts
        eos = np.array([tokenizer.eos_id], dtype=np.int64)
        sources = []
        units = _units(docs + val_documents, errors, tunes_everywhere, midi)
        encoded = encode_chunks(tokenizer, _tagged_chunks(units, val_docs), options.workers)
        current = -1
        skipped: dict[str, list] = {}
        rounds: list[TokenFileWriter] = []  # round k: copy k of every training document
        val_unknown = 0
        for i, parts in encoded:
            if isinstance(parts, str):  # a tune that cannot be read: counted, not fatal
                entry = skipped.setdefault(parts, [0, names[i]])
                entry[0] += 1
                continue
            ids = parts[0]
            for k, copy in enumerate(parts[1:]):
                if k == len(rounds):
                    rounds.append(TokenFileWriter(staging / f"copies-{k}.bin", dtype))
                rounds[k].write(copy)
                rounds[k].write(eos)
                counts += np.bincount(copy, minlength=vocab_size)[:vocab_size]
            if i != current:  # a new document: close the previous one, open this one
                if current >= 0:
                    (val if current in val_docs else train).write(eos)
                current = i
                writer = val if i in val_docs else train
                if writer.count == 0:
                    writer.write(eos)
            if known_counts is None or i >= n_train_units:  # the fit never saw --val files
                counts += np.bincount(ids, minlength=vocab_size)[:vocab_size]
            if i in val_docs:
                val_unknown += int((ids == tokenizer.unk_id).sum())
            writer.write(ids)
        if current >= 0:
            (val if current in val_docs else train).write(eos)
        for doc in docs + val_documents:
            sources.append(
                {
                    "name": doc.name,
                    "sha256": hashes.sha256(doc.path),
                    "bytes": doc.path.stat().st_size,
                    "split": "val" if doc in val_documents else "train",
                }
            )
        train.close()
        val.close()
        if skipped and train.count + val.count == 0:  # every document was unreadable
            _refuse_all_skipped(skipped, midi)
        if split == "position":
            _move_tail(staging / "train.bin", staging / "val.bin", dtype, options.val_fraction)
        _append_rounds(staging / "train.bin", rounds)
        train_tokens = (staging / "train.bin").stat().st_size // np.dtype(dtype).itemsize
        val_tokens = (staging / "val.bin").stat().st_size // np.dtype(dtype).itemsize
        if train_tokens < 2:
            if skipped:
                _refuse_all_skipped(skipped, midi)
            raise GenseqError("the corpus is too small to train on: fewer than 2 tokens")
        tokenizer.save(staging / "tokenizer.json")
        order_ids = np.argsort(-counts, kind="stable")[:20]
        specials = (tokenizer.unk_id, tokenizer.eos_id)
        top = [
            (tokenizer.id_to_token(i) if i in specials else tokenizer.decode([i]), int(counts[i]))
            for i in map(int, order_ids)
            if counts[i]
        ]
        summary = TokenizeSummary(
            documents=n_units,
            characters=characters,
            tokens=int(counts.sum()),
            train_tokens=int(train_tokens),
            val_tokens=int(val_tokens),
            vocab_size=vocab_size,
            unknown_tokens=int(counts[tokenizer.unk_id]),
            split=split,
            level=level,
            skipped=sum(v[0] for v in skipped.values()),
            skip_reasons=sorted(
                ((r, n, example) for r, (n, example) in skipped.items()), key=lambda x: -x[1]
            ),
            top_tokens=top,
            fit_share=fitted / train_characters,
            val_sources=[doc.name for doc in val_documents],
            val_unknown_tokens=val_unknown,
        )
        meta = {
            "format": DATA_FORMAT,
            "schema": DATA_SCHEMA,
            "genseq_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "level": level,
            "dtype": dtype,
            "vocab_size": vocab_size,
            "tokenizer": "tokenizer.json",
            "options": asdict(options),
            "splits": {
                "train": {"file": "train.bin", "tokens": int(train_tokens)},
                "val": {"file": "val.bin", "tokens": int(val_tokens)},
            },
            "split": split,
            "val_documents": sorted(names[i] for i in val_docs),
            "summary": {k: v for k, v in asdict(summary).items() if k != "top_tokens"},
            "top_tokens": top,
            "sources": sources,
        }
        meta_text = json.dumps(jsonable(meta), indent=2, ensure_ascii=False)
        atomic_write_text(staging / "meta.json", meta_text)
        replace_dir(staging, out_dir)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.seconds = time.perf_counter() - started
    return summary


def _refuse_all_skipped(skipped: dict[str, list], midi: bool) -> None:
    reason, (_, example) = max(skipped.items(), key=lambda item: item[1][0])
    what = "documents" if midi else "tunes"
    raise GenseqError(
        f"no readable {what} to train on: {sum(v[0] for v in skipped.values())} skipped "
        f"(most often: {reason}, e.g. {example})"
    )


def _append_rounds(train_path: Path, rounds: list[TokenFileWriter]) -> None:
    """Append the augmented copies to the training split, round after round, and delete their
    files. Each round ends with ``<eos>``, as the training split does. With ``--split
    position`` they come after the tail moved to validation, so validation holds no copy."""
    with open(train_path, "ab") as dst:
        for writer in rounds:
            writer.close()
            with open(writer.path, "rb") as src:
                shutil.copyfileobj(src, dst, COPY_BLOCK)
            writer.path.unlink()


def _move_tail(train_path: Path, val_path: Path, dtype: str, fraction: float) -> None:
    """Move the last ``fraction`` of the train file's tokens into the val file, in blocks."""
    itemsize = np.dtype(dtype).itemsize
    total = train_path.stat().st_size // itemsize
    n_val = round(total * fraction)
    if fraction > 0:
        n_val = max(n_val, 2)
    if n_val == 0:
        return
    if total - n_val < 2:
        raise GenseqError(f"the corpus is too small to split: {total} tokens")
    cut = (total - n_val) * itemsize
    with open(train_path, "r+b") as src, open(val_path, "wb") as dst:
        src.seek(cut)
        for block in iter(lambda: src.read(COPY_BLOCK), b""):
            dst.write(block)
        src.truncate(cut)
