"""What `genseq sample` was asked, checked once, and what its three kinds of output share.

A ``SampleRequest`` is made from the options before the checkpoint is read, and checks on
construction what needs no checkpoint (sampling settings, counts, tempo, program). Each kind of
model then refuses, with ``refuse``, the options it cannot use. ``seed_for`` draws the seed
once the request is known to be good and shows it, so that every run can be repeated.

This module imports no heavy library: the CLI loads it at start-up for ``TuneForm``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from genseq.errors import GenseqError, UsageError

if TYPE_CHECKING:
    from genseq.sample import SamplingSettings


class TuneForm(StrEnum):
    folk = "folk"
    free = "free"


FLAG_OF = {"prompt": "--prompt/--prompt-file"}  # fields whose option is not --field-name


@dataclass(frozen=True)
class SampleRequest:
    """Every option of one `genseq sample`, by field; ``None`` means not given."""

    settings: SamplingSettings
    num_samples: int = 1
    seed: int | None = None  # None: ``seed_for`` draws one
    prompt: str = ""
    max_new_tokens: int | None = None  # None: the kind's own default
    stop: tuple[str, ...] = ()
    echo: bool = True
    constrain: bool = True
    tempo: float = 120.0
    # tunes (ABC models)
    meter: str | None = None
    key: str | None = None
    mode: str | None = None
    form: TuneForm = TuneForm.folk
    bars_per_part: int | None = None
    parts: int | None = None
    program: int | None = None
    # MIDI models
    primer_midi: Path | None = None
    primer_abc: Path | None = None
    num_steps: int | None = None
    seconds: float | None = None
    # where samples and messages go
    output: Path | None = None
    midi: Path | None = None
    wav: Path | None = None
    png: Path | None = None
    svg: Path | None = None
    musicxml: Path | None = None
    json: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        self.settings.validate()
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UsageError("--max-new-tokens must be at least 1")
        if self.num_samples < 1:
            raise UsageError("--num-samples must be at least 1")
        if not (math.isfinite(self.tempo) and self.tempo > 0):
            raise UsageError("--tempo must be a positive number")
        if self.program is not None and not 0 <= self.program <= 127:
            raise UsageError("--program must be a General MIDI program, 0-127")

    def given(self, fields: Sequence[str]) -> list[str]:
        """The options among ``fields`` that were given (an empty prompt or stop list was not)."""
        return [
            FLAG_OF.get(name, "--" + name.replace("_", "-"))
            for name in fields
            if getattr(self, name) not in (None, "", ())
        ]

    def refuse(self, fields: Sequence[str], why: str) -> None:
        """One usage error naming every option among ``fields`` that was given."""
        if given := self.given(fields):
            raise UsageError(f"{', '.join(given)}: {why}")

    def note(self, message: str) -> None:
        """A line on stderr, unless --quiet."""
        if not self.quiet:
            print(message, file=sys.stderr)


def seed_for(request: SampleRequest) -> int:
    """The request's seed, or a new one shown on stderr so that the run can be repeated."""
    if request.seed is not None:
        return request.seed
    import random

    seed = random.SystemRandom().randrange(2**31)
    request.note(f"seed: {seed}")
    return seed


def read_prompt(prompt: str | None, prompt_file: str | None, encoding_errors: str) -> str:
    """The text of --prompt or --prompt-file (``-``: standard input), decoded as asked."""
    if prompt is not None and prompt_file is not None:
        raise UsageError("give --prompt or --prompt-file, not both")
    if prompt_file is None:
        try:  # argv holds undecodable bytes as surrogates: decode them as asked
            raw = (prompt or "").encode("utf-8", "surrogateescape")
            return raw.decode("utf-8", errors=encoding_errors)
        except UnicodeDecodeError:
            raise GenseqError(
                "--prompt is not valid UTF-8; pass --encoding-errors replace to use it anyway"
            ) from None
    name, data = _read_prompt_file(prompt_file)
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8", errors=encoding_errors)
    except UnicodeDecodeError as exc:
        raise GenseqError(
            f"{name}: not valid UTF-8 (byte {data[exc.start]:#04x} at offset "
            f"{exc.start}); pass --encoding-errors replace"
        ) from None


def _read_prompt_file(prompt_file: str) -> tuple[str, bytes | str]:
    """The file's name for messages and its contents (text where stdin has no byte buffer)."""
    if prompt_file == "-":
        if sys.stdin is None:
            raise UsageError("--prompt-file -: standard input is closed")
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        return "<stdin>", data
    try:
        return prompt_file, Path(prompt_file).read_bytes()
    except OSError as exc:
        raise GenseqError(f"{prompt_file}: {exc.strerror}") from None


def check_folders(*folders: Path | None) -> None:
    """Refuse an output folder that exists as something else (a file), before any is made."""
    for folder in folders:
        if folder is not None and folder.exists() and not folder.is_dir():
            raise GenseqError(f"{folder}: not a folder; give a folder for the files")


def make_folders(*folders: Path | None) -> None:
    """Create the output folders that were given, after checking them all, so that a bad one
    leaves no new folder behind."""
    check_folders(*folders)
    for folder in folders:
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GenseqError(f"{folder}: cannot create the folder ({exc.strerror})") from None


def report_written(request: SampleRequest, written: Sequence[str]) -> None:
    """``wrote A, B, C and N more`` on stderr when files were written."""
    if written:
        more = f" and {len(written) - 3} more" if len(written) > 3 else ""
        request.note(f"wrote {', '.join(written[:3])}{more}")
