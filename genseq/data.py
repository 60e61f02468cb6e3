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

from genseq.errors import GenseqError, UsageError

DATA_FORMAT = "genseq-data"
DATA_SCHEMA = 1


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
        except (TypeError, ValueError):
            copies = 1
        return max(1, len(self.train) // copies)

    def tokenizer(self):
        from genseq.tokenization import load_tokenizer

        return load_tokenizer(self.path / "tokenizer.json", self.level)


def is_data_dir(path: Path) -> bool:
    return (Path(path) / "meta.json").is_file()


def open_data(path: Path) -> TokenData:
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise GenseqError(f"{path}: not a genseq data directory (no meta.json)")
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GenseqError(f"{meta_path}: not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != DATA_FORMAT:
        raise GenseqError(f"{path}: meta.json is not from a genseq data directory")
    if meta.get("schema", 0) > DATA_SCHEMA:
        raise GenseqError(f"{path}: written by a newer genseq (schema {meta['schema']})")
    try:
        dtype = meta["dtype"]
        train = read_tokens(path / meta["splits"]["train"]["file"], dtype)
        val = read_tokens(path / meta["splits"]["val"]["file"], dtype)
    except (KeyError, FileNotFoundError, OSError, ValueError) as exc:
        raise GenseqError(f"{path}: incomplete data directory ({exc})") from None
    return TokenData(path, meta, train, val)


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
