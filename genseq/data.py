"""Token files and the batches the trainer reads from them.

A data directory holds ``train.bin`` and ``val.bin`` (raw token ids, ``uint16`` when the
vocabulary fits, else ``uint32``, read back as numpy memmaps so no corpus is ever loaded
whole), ``tokenizer.json`` and ``meta.json``. Training uses truncated backpropagation through
time over contiguous streams, as char-rnn and PyTorch's word_language_model do: the token file is
cut into ``batch_size`` streams and each batch is the next ``seq_len`` window of every stream,
so the recurrent state carried from one batch to the next belongs to the same stream.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genseq.errors import GenseqError, UsageError, shown

DATA_FORMAT = "genseq-data"
DATA_SCHEMA = 1
# The format fixes where each split lives and how its ids are stored (with the largest
# vocabulary each dtype holds).
SPLIT_FILES = {"train": "train.bin", "val": "val.bin"}
TOKEN_DTYPES = {"uint16": 2**16, "uint32": 2**32}
ID_CHECK_CHUNK = 1 << 24


def dtype_for_vocab(vocab_size: int, requested: str = "auto") -> str:
    """``uint16`` when every id fits, else ``uint32``; an explicit choice that cannot hold the
    vocabulary is an error rather than silent truncation."""
    if requested == "auto":
        return "uint16" if vocab_size <= 2**16 else "uint32"
    if requested not in ("uint16", "uint32"):
        raise UsageError(f"--dtype must be auto, uint16 or uint32, not {requested!r}")
    if requested == "uint16" and vocab_size > 2**16:
        raise UsageError(
            f"a vocabulary of {vocab_size:,} tokens does not fit in uint16 token files; "
            "use --dtype uint32 or a smaller --vocab-size"
        )
    return requested


class TokenFileWriter:
    """Append-only writer of a raw token file; memory use is one chunk."""

    def __init__(self, path: Path, dtype: str) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.count = 0
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed by close())

    def write(self, ids: np.ndarray) -> None:
        if ids.size:
            self._file.write(memoryview(np.ascontiguousarray(ids, dtype=self.dtype)).cast("B"))
            self.count += int(ids.size)

    def close(self) -> None:
        self._file.flush()
        self._file.close()


def read_tokens(path: Path, dtype: str) -> np.ndarray:
    """A read-only memmap of a token file (an empty array for an empty file)."""
    if Path(path).stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


@dataclass
class TokenData:
    """An opened data directory: its metadata, tokenizer and split memmaps."""

    path: Path
    meta: dict
    train: np.ndarray
    val: np.ndarray

    @property
    def level(self) -> str:
        return self.meta["level"]

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def distinct_train_tokens(self) -> int:
        """Training tokens without the transposed copies ``--augment-keys`` added: a model
        overfits a tune and its transpositions together, so planning counts epochs on this."""
        try:
            copies = 1 + max(0, int((self.meta.get("options") or {}).get("augment_keys") or 0))
        except (TypeError, ValueError, OverflowError):
            copies = 1
        return max(1, len(self.train) // copies)

    def tokenizer(self):
        """The data's tokenizer, refused when another level wrote it or when its vocabulary
        is not the one the token ids were checked against."""
        from genseq.tokenization import LEVELS
        from genseq.tokenizer_kinds import load_checked

        if self.level not in LEVELS:
            raise GenseqError(f"{self.path}/meta.json: no known level ({shown(self.level)})")
        return load_checked(self.path / "tokenizer.json", self.level, self.vocab_size, "meta.json")


def is_data_dir(path: Path) -> bool:
    return (Path(path) / "meta.json").is_file()


def open_data(path: Path) -> TokenData:
    """Open a data directory, checked at the door: ``meta.json`` well formed, the token files
    at the names the format fixes, and every id below the vocabulary (one pass over each
    memmap), so that training never indexes past its embedding."""
    path = Path(path)
    meta = _read_meta(path)
    dtype, vocab_size = _token_layout(path, meta)
    splits = {split: _open_split(path, split, meta, dtype, vocab_size) for split in SPLIT_FILES}
    return TokenData(path, meta, splits["train"], splits["val"])


def _read_meta(path: Path) -> dict:
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise GenseqError(f"{path}: not a genseq data directory (no meta.json)")
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or a number too long to read
        raise GenseqError(f"{meta_path}: not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != DATA_FORMAT:
        raise GenseqError(f"{path}: meta.json is not from a genseq data directory")
    schema = meta.get("schema", 0)
    if isinstance(schema, bool) or not isinstance(schema, int):
        raise GenseqError(f"{meta_path}: schema must be an integer, not {shown(schema)}")
    if schema > DATA_SCHEMA:
        raise GenseqError(f"{path}: written by a newer genseq (schema {shown(schema)})")
    if not isinstance(meta.get("level"), str):
        raise GenseqError(f"{meta_path}: no tokenizer level")
    if not isinstance(meta.get("options", {}), dict | None):
        raise GenseqError(f"{meta_path}: options must be an object")
    return meta


def _token_layout(path: Path, meta: dict) -> tuple[str, int]:
    """The token files' dtype and the vocabulary their ids must stay below."""
    dtype, vocab_size = meta.get("dtype"), meta.get("vocab_size")
    if not isinstance(dtype, str) or dtype not in TOKEN_DTYPES:
        raise GenseqError(f"{path}/meta.json: dtype must be uint16 or uint32, not {shown(dtype)}")
    most = TOKEN_DTYPES[dtype]
    integer = isinstance(vocab_size, int) and not isinstance(vocab_size, bool)
    if not integer or not 1 <= vocab_size <= most:
        raise GenseqError(
            f"{path}/meta.json: vocab_size must be an integer from 1 to {most:,} in {dtype} "
            f"token files, not {shown(vocab_size)}"
        )
    return dtype, vocab_size


def _open_split(path: Path, split: str, meta: dict, dtype: str, vocab_size: int) -> np.ndarray:
    """A split's memmap from the file the format names (``meta.json`` names files too, but a
    path from a file is never followed: ``../../etc/group`` must not be read as tokens)."""
    file = path / SPLIT_FILES[split]
    if not file.is_file():
        raise GenseqError(f"{path}: incomplete data directory (no {file.name})")
    try:
        tokens = read_tokens(file, dtype)
    except ValueError:  # a size that is not a whole number of ids
        raise GenseqError(f"{file}: not a whole number of {dtype} token ids") from None
    recorded = _recorded_tokens(path, meta, split)
    if recorded is not None and recorded != len(tokens):
        raise GenseqError(
            f"{file}: holds {len(tokens):,} tokens but meta.json records {shown(recorded)} "
            "(cut short or replaced?)"
        )
    top = largest_id(tokens)
    if top >= vocab_size:
        raise GenseqError(
            f"{file}: holds token id {top:,}, beyond the vocabulary of {vocab_size:,} tokens "
            "(not this data directory's tokens; run genseq tokenize again)"
        )
    return tokens


def _recorded_tokens(path: Path, meta: dict, split: str) -> int | None:
    """The split's token count ``genseq tokenize`` recorded, if any."""
    entry = meta.get("splits", {})
    entry = entry.get(split) if isinstance(entry, dict) else None
    count = entry.get("tokens") if isinstance(entry, dict) else None
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int):
        raise GenseqError(f"{path}/meta.json: the {split} split's token count is {shown(count)}")
    return count


def largest_id(tokens: np.ndarray) -> int:
    """The largest id in a token array (-1 when empty), read a chunk at a time: a memmap
    is never loaded whole."""
    top = -1
    for start in range(0, len(tokens), ID_CHECK_CHUNK):
        top = max(top, int(tokens[start : start + ID_CHECK_CHUNK].max()))
    return top


# ---------------------------------------------------------------------------------------------
# Batches


class StreamBatches:
    """Stateful truncated-BPTT batches over contiguous streams.

    With N tokens, B streams and window T, each stream holds L = (N - 1) // B tokens (plus one
    to predict), laid out column-wise as PyTorch's word_language_model ``batchify`` does::

        tokens: a b c d e f g h i j k l m n o p q r s t u v w x ...
        B = 4   stream 0: a b c d e f      x = [a b c]  y = [b c d]   (window 0)
                stream 1: g h i j k l      x = [g h i]  y = [h i j]
                stream 2: m n o p q r      ...
                stream 3: s t u v w x
                          |T=3|T=3|        the state after window 0 of stream b
                                           starts window 1 of stream b

    Each epoch starts the windows at a different offset (below T, from the seed), so window
    boundaries move between epochs while the order stays deterministic for exact resume.
    A process of a multi-process run takes the streams ``rank::world`` of the same global batch,
    so N processes see exactly the batches of one process with the global batch size.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        batch_size: int,
        seq_len: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if seq_len < 1 or batch_size < 1:
            raise UsageError("--seq-len and --batch-size must be at least 1")
        self.tokens = tokens
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.seed = seed
        self.stream_len = (len(tokens) - 1) // batch_size
        if self.stream_len < seq_len + 1:
            raise UsageError(
                f"the training split has {len(tokens):,} tokens: too few for "
                f"{batch_size} streams of {seq_len + 1} tokens; lower --batch-size or --seq-len"
            )
        self.streams = np.arange(batch_size)[rank::world_size]
        self._starts = self.streams * self.stream_len

    def offset(self, epoch: int) -> int:
        """Where epoch ``epoch``'s first window starts inside each stream."""
        if epoch == 0:
            return 0
        # Below T, and small enough that the epoch still has at least one full window.
        high = min(self.seq_len, self.stream_len - self.seq_len + 1)
        return int(np.random.default_rng([self.seed, epoch]).integers(high))

    def batches_in_epoch(self, epoch: int) -> int:
        return (self.stream_len - self.offset(epoch)) // self.seq_len

    @property
    def tokens_per_epoch(self) -> int:
        return self.batches_in_epoch(0) * self.seq_len * self.batch_size

    def get(self, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets (both ``(B, T)`` int64) of window ``index`` of epoch ``epoch``."""
        start = self.offset(epoch) + index * self.seq_len
        rows = self._starts[:, None] + start + np.arange(self.seq_len + 1)  # (B, T+1)
        window = np.asarray(self.tokens[rows], dtype=np.int64)
        return window[:, :-1], window[:, 1:]


def eval_windows(tokens: np.ndarray, streams: int, seq_len: int):
    """Every prediction of ``tokens`` exactly once, in ``streams`` contiguous streams.

    Yields ``(x, y)`` windows of shape ``(B, <=T)``, each built from slices of ``tokens`` (a
    memmap is never copied whole); targets past the end are -1 (ignored by the loss), so the
    mean loss covers all ``len(tokens) - 1`` predictions, none twice.
    """
    n = len(tokens) - 1
    if n < 1:
        return
    streams = max(1, min(streams, n))
    length = math.ceil(n / streams)  # predictions per stream (the last may have fewer)
    for start in range(0, length, seq_len):
        width = min(seq_len, length - start)
        x = np.zeros((streams, width), dtype=np.int64)
        y = np.full((streams, width), -1, dtype=np.int64)
        for b in range(streams):
            lo = b * length + start  # first input of this window in the flat sequence
            inputs = min(lo + width, n + 1) - lo  # the last token is still fed (state)...
            targets = min(lo + width, n) - lo  # ...but predicts nothing
            if inputs > 0:
                x[b, :inputs] = tokens[lo : lo + inputs]
            if targets > 0:
                y[b, :targets] = tokens[lo + 1 : lo + 1 + targets]
        yield x, y
