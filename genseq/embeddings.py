"""Pretrained word vectors (``genseq train --embeddings FILE``): read, match, load, freeze.

Two text formats, plain or gzip-compressed (``.gz``, recognised by content), told apart by
their first line:

    GloVe      ``word v1 v2 ... vd`` on every line
    word2vec   a first line ``count dim``, then the same rows (gensim's ``save_word2vec_format``
               with ``binary=False``; the binary format is refused as not UTF-8)

The file is streamed line by line: a GloVe file can be gigabytes, and only the rows whose word
is in the vocabulary are kept (at most two per vocabulary word while reading). Every row's
dimension is checked (rows of mixed dimension mean a broken file); the numbers are parsed in
the rows that are kept, and must be finite. The special tokens ``<unk>`` and ``<eos>`` and the
line break are never looked up: they keep genseq's own initialisation, as every vocabulary word
the file lacks does.

Case: a vocabulary word matches the row spelled exactly as it is. With ``ignore_case`` a word
the file lacks in that spelling takes the first row whose lower-cased word equals its own
lower-cased spelling; GloVe and word2vec files list words by falling frequency, so the first row
is the most frequent casing ("apple" with no "apple" row takes "Apple" if it comes before
"APPLE"). An exact spelling always wins over another casing.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genseq.errors import GenseqError, brief, shown
from genseq.tokenization.base import EOS, UNK

if TYPE_CHECKING:
    import torch

GZIP_MAGIC = b"\x1f\x8b"  # gzip is read by its content, whatever the file's name
NEVER_LOOKED_UP = frozenset((UNK, EOS, "\n"))


@dataclass
class WordVectors:
    """The rows of a vectors file that the vocabulary uses."""

    file: str  # the file's name, as config.json records it
    format: str  # glove | word2vec
    dimension: int
    ids: np.ndarray  # (N,) int64 vocabulary ids, rising
    vectors: np.ndarray  # (N, dimension) float32, row i for ids[i]
    vocab_size: int
    ignore_case: bool

    @property
    def found(self) -> int:
        return len(self.ids)

    def info(self) -> dict:
        """What config.json records (``TrainConfig.embeddings_loaded``) for `genseq info`."""
        return {
            "file": self.file,
            "format": self.format,
            "dimension": self.dimension,
            "found": self.found,
            "vocabulary": self.vocab_size,
            "ignore_case": self.ignore_case,
        }


def coverage_line(info: dict, embed_size: int, frozen: bool) -> str:
    """The plan's line: how much of the vocabulary the file covered, and what the model does
    with the vectors."""
    found, total = info["found"], info["vocabulary"]
    share = 100 * found / total if total else 0.0
    dim = info["dimension"]
    shape = f"{dim}-dimensional" + (
        f", projected to {embed_size}" if dim != embed_size else ", the embedding's width"
    )
    held = "loaded rows frozen" if frozen else "all rows trained"
    case = ", case-insensitive" if info.get("ignore_case") else ""
    return (
        f"embeddings: {found:,} of {total:,} vocabulary words found in {info['file']} "
        f"({share:.1f}%{case}); {shape}; {held}"
    )


def check_file(path: Path) -> None:
    """The checks that need no vocabulary, made before anything is tokenized: the file
    exists and its first line is GloVe's or word2vec's."""
    with _open_lines(path) as lines:
        _read_header(path, lines)


def read_vectors(path: Path, vocab: dict[str, int], ignore_case: bool = False) -> WordVectors:
    """The vectors of the vocabulary's words (``vocab``: token -> id), streamed from ``path``;
    a GenseqError naming the file and line for a file genseq cannot read, and for one that
    holds no vocabulary word."""
    path = Path(path)
    wanted = {w: i for w, i in vocab.items() if w not in NEVER_LOOKED_UP}
    by_lower: dict[str, list[int]] = {}
    if ignore_case:
        for word, i in wanted.items():
            by_lower.setdefault(word.lower(), []).append(i)
    exact: dict[int, np.ndarray] = {}
    folded: dict[int, np.ndarray] = {}
    with _open_lines(path) as lines:
        fmt, dim, expected_rows, first = _read_header(path, lines)
        rows = 0
        for number, line in _rows(path, lines, first):
            rows += 1
            word, values = _split_row(path, number, line, dim)
            i = wanted.get(word)
            exact_hit = i is not None and i not in exact
            folded_hits = (
                [j for j in by_lower.get(word.lower(), ()) if j not in folded] if by_lower else []
            )
            if exact_hit or folded_hits:
                vector = _parse(path, number, values)
                if exact_hit:
                    exact[i] = vector
                for j in folded_hits:
                    folded[j] = vector
    if expected_rows is not None and rows != expected_rows:
        raise GenseqError(
            f"{path}: the word2vec header gives {expected_rows:,} rows but the file holds "
            f"{rows:,} (cut short?)"
        )
    chosen = {**folded, **exact}
    if not chosen:
        hint = "" if ignore_case else "; --embeddings-ignore-case matches any casing"
        raise GenseqError(
            f"{path}: none of the {len(wanted):,} vocabulary words is in this file "
            f"(vectors of another language or tokenization{hint})"
        )
    ids = np.array(sorted(chosen), dtype=np.int64)
    vectors = np.stack([chosen[int(i)] for i in ids]).astype(np.float32)
    return WordVectors(path.name, fmt, dim, ids, vectors, len(vocab), ignore_case)


class _open_lines:
    """``path``'s lines as bytes (gunzipped when the file is gzip), with the OS's and zlib's
    errors as one GenseqError line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __enter__(self) -> Iterator[bytes]:
        if not self.path.exists():
            raise GenseqError(f"{self.path}: no such embeddings file")
        if not self.path.is_file():
            raise GenseqError(f"{self.path}: not a file")
        try:
            with self.path.open("rb") as probe:
                packed = probe.read(2) == GZIP_MAGIC
            self.handle = gzip.open(self.path, "rb") if packed else self.path.open("rb")
        except OSError as exc:
            raise GenseqError(f"{self.path}: cannot be read ({exc.strerror or exc})") from None
        return self._lines()

    def _lines(self) -> Iterator[bytes]:
        try:
            yield from self.handle
        except (OSError, EOFError, zlib.error) as exc:
            raise GenseqError(f"{self.path}: cannot be read ({brief(str(exc))})") from None

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def _decode(path: Path, number: int, line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise GenseqError(
            f"{path}: line {number} is not UTF-8 text (a binary word2vec file? save it as "
            "text, with binary=False)"
        ) from None


def _read_header(path: Path, lines: Iterator[bytes]) -> tuple[str, int, int | None, str | None]:
    """The format, dimension and (word2vec) row count from the first line; for GloVe the
    first line is a row and is handed back to be read as one."""
    raw = next(lines, None)
    if raw is None:
        raise GenseqError(f"{path}: empty; expected GloVe or word2vec text vectors")
    line = _decode(path, 1, raw).removeprefix("\ufeff")  # a byte-order mark, if any
    fields = line.split()
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        count, dim = int(fields[0]), int(fields[1])
        if dim < 1:
            raise GenseqError(f"{path}: the word2vec header gives dimension {dim}")
        return "word2vec", dim, count, None
    if len(fields) < 2 or not _all_numbers(fields[1:]):
        raise GenseqError(
            f"{path}: neither GloVe (word v1 ... vd per line) nor word2vec text (a first line "
            f"'count dim'); line 1 begins {shown(line.strip(), 30)}"
        )
    return "glove", len(fields) - 1, None, line


def _all_numbers(fields: list[str]) -> bool:
    try:
        np.array(fields, dtype=np.float32)
    except ValueError:
        return False
    return True


def _rows(path: Path, lines: Iterator[bytes], first: str | None) -> Iterator[tuple[int, str]]:
    """(line number, text) of every row; blank lines are skipped."""
    start = 2
    if first is not None:
        yield 1, first
    for number, raw in enumerate(lines, start):
        line = _decode(path, number, raw)
        if line.strip():
            yield number, line


def _split_row(path: Path, number: int, line: str, dim: int) -> tuple[str, list[str]]:
    """The word and its ``dim`` values as text. A word may hold spaces (GloVe 840B has a
    few): the values are the last ``dim`` fields; a row with more or fewer is refused."""
    parts = line.rstrip().rsplit(None, dim)
    if len(parts) == dim + 1:
        word = parts[0]
        last = word.rsplit(None, 1)[-1]
        if last == word or not _is_number(last):
            return word, parts[1:]
    count = len(line.split()) - 1
    raise GenseqError(
        f"{path}: line {number} has {count:,} value{'s' * (count != 1)} where the file's "
        f"rows have {dim:,} (rows of mixed dimension)"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse(path: Path, number: int, values: list[str]) -> np.ndarray:
    try:
        vector = np.array(values, dtype=np.float32)
    except ValueError:
        bad = next(v for v in values if not _is_number(v))
        raise GenseqError(f"{path}: line {number}: {shown(bad, 30)} is not a number") from None
    if not np.isfinite(vector).all():
        raise GenseqError(f"{path}: line {number} holds a NaN or infinite value")
    return vector


def load_rows(embedding: torch.nn.Embedding, vectors: WordVectors) -> None:
    """Copy the file's vectors into their rows of the embedding table (its width is the
    file's dimension); the other rows keep the model's own initialisation."""
    import torch

    with torch.no_grad():
        rows = torch.from_numpy(vectors.ids).to(embedding.weight.device)
        embedding.weight[rows] = torch.from_numpy(vectors.vectors).to(embedding.weight)


def freeze_rows(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, rows: torch.Tensor | np.ndarray
) -> None:
    """Keep ``rows`` of ``model.embed.weight`` fixed while the other rows train.

    Their gradient is zeroed (so they weigh nothing in gradient clipping and in Adam's
    moments), and after every optimizer step they are put back, since decoupled weight decay
    (AdamW) and SGD's L2 term move a weight even with a zero gradient. A tied output layer is
    the same tensor, so its rows for those words are fixed as well."""
    import torch

    weight = model.embed.weight
    rows = torch.as_tensor(rows, dtype=torch.int64, device=weight.device)
    keep = torch.ones(weight.size(0), 1, device=weight.device, dtype=weight.dtype)
    keep[rows] = 0
    fixed = weight.detach()[rows].clone()
    weight.register_hook(lambda grad: grad * keep.to(grad.dtype))

    def put_back(*_: object) -> None:
        with torch.no_grad():
            weight[rows] = fixed

    optimizer.register_step_post_hook(put_back)
