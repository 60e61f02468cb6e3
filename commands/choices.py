"""The closed sets of values that options take, as enums: Click checks them (a bad value is a
usage error, exit 2) and shell completion offers them.

The library keeps its own tuples (``genseq.model.CELLS``, ``genseq.plan.OPTIMIZERS``...) and
checks its dataclasses itself; these enums repeat them here because the CLI must not import
torch at start-up, and tests/test_conventions.py checks that both say the same.
``options_for`` hands the dataclasses each value as a plain ``str``.

A device is an open set (``cuda:1``), so ``--device`` stays a string that completion
suggests values for (``complete_device``); ``genseq.device.resolve_device`` checks it.
"""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    auto = "auto"
    char = "char"
    word = "word"
    bpe = "bpe"
    abc = "abc"
    midi_melody = "midi-melody"
    midi_performance = "midi-performance"


class Arch(StrEnum):
    rnn = "rnn"
    transformer = "transformer"


class Cell(StrEnum):
    lstm = "lstm"
    gru = "gru"
    rnn_tanh = "rnn-tanh"
    rnn_relu = "rnn-relu"


class Optimizer(StrEnum):
    adamw = "adamw"
    adam = "adam"
    sgd = "sgd"


class Schedule(StrEnum):
    cosine = "cosine"
    plateau = "plateau"
    constant = "constant"


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class OnNan(StrEnum):
    stop = "stop"
    skip = "skip"


class EncodingErrors(StrEnum):
    strict = "strict"
    replace = "replace"
    ignore = "ignore"


class Split(StrEnum):
    auto = "auto"
    position = "position"
    document = "document"


class TokenDtype(StrEnum):
    auto = "auto"
    uint16 = "uint16"
    uint32 = "uint32"


DEVICES = ("auto", "cpu", "cuda", "mps")  # and cuda:N, which completion does not list
MODES = ("maj", "min", "dor", "mix", "phr", "lyd", "loc")  # genseq.music.abc_vocab.MODES


def complete_device(incomplete: str) -> list[str]:
    """The device names that start with what was typed."""
    return [name for name in DEVICES if name.startswith(incomplete)]


def complete_mode(incomplete: str) -> list[str]:
    """The modes that start with what was typed (longer names such as dorian are accepted)."""
    return [name for name in MODES if name.startswith(incomplete)]
