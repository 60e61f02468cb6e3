"""ABC text -> folk-rnn style tokens (being written; interface fixed)."""

from __future__ import annotations

from dataclasses import dataclass


class AbcError(ValueError):
    """A tune that cannot be read; the message is the reason shown in summaries."""


@dataclass(frozen=True)
class RawTune:
    number: str | None  # the X: field
    title: str  # the first T: field, or ""
    text: str  # the tune's text from its X: line to the line before the next tune
    line: int  # 1-based line number of the X: line in its file


@dataclass(frozen=True)
class LexOptions:
    chords: bool = False
    decorations: bool = False
    grace: bool = False
    normalise_unit: bool = True
    transpose: str | None = None  # a tonic such as "C": every tune moves to it, mode kept


def split_tunebook(text: str) -> list[RawTune]:
    raise NotImplementedError


def tokenize_tune(text: str, options: LexOptions = LexOptions()) -> list[str]:
    raise NotImplementedError
