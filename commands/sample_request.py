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
from genseq.music.header import DEFAULT_TEMPO, TuneRhythm

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
    tempo: float | None = None  # None: a tune's own tempo, else DEFAULT_TEMPO
    # tunes (ABC models)
    rhythm: TuneRhythm | None = None
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
    soundfont: Path | None = None  # None: $GENSEQ_SOUNDFONT or one installed (soundfont.choose)
    png: Path | None = None
    svg: Path | None = None
    musicxml: Path | None = None
    overwrite: bool = False  # restart numbered files at 1 and replace -o's tunebook
    json: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        self.settings.validate()
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UsageError("--max-new-tokens must be at least 1")
        if self.num_samples < 1:
            raise UsageError("--num-samples must be at least 1")
        if self.tempo is not None and not (math.isfinite(self.tempo) and self.tempo > 0):
            raise UsageError("--tempo must be a positive number")
        if self.program is not None and not 0 <= self.program <= 127:
            raise UsageError("--program must be a General MIDI program, 0-127")
        self._check_outputs()
        if self.soundfont is not None and self.wav is None:
            raise UsageError("--soundfont: only with --wav (it is the sound of the WAV files)")

    def _check_outputs(self) -> None:
        """``-`` is standard output for -o only; --overwrite needs files to overwrite."""
        folders = (("--wav", self.wav), ("--png", self.png), ("--svg", self.svg))
        for flag, folder in (*folders, ("--musicxml", self.musicxml)):
            if is_stdout(folder):
                raise UsageError(f"{flag} -: give a folder (only -o writes standard output)")
        if self.to_stdout and self.json:
            raise UsageError("-o - and --json both write standard output; give one")
        files = [self.output, self.midi, self.wav, self.png, self.svg, self.musicxml]
        if self.overwrite and all(f is None or is_stdout(f) for f in files):
            raise UsageError(
                "--overwrite: no files to overwrite (give -o FILE, --midi, --wav, --png, --svg "
                "or --musicxml)"
            )

    @property
    def to_stdout(self) -> bool:
        """-o - : the samples go to standard output."""
        return is_stdout(self.output)

    @property
    def playback_tempo(self) -> float:
        """Quarter notes per minute for a piece that has no tempo of its own (MIDI)."""
        return DEFAULT_TEMPO if self.tempo is None else self.tempo

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


SAMPLE_SCHEMA = 2  # the JSON row of every kind of sample (README: "JSON rows of a sample")


def sample_row(
    request: SampleRequest,
    *,
    kind: str,
    index: int,
    text: str,
    tokens: int,
    finish_reason: str,
    seed: int,
    files: Sequence[str],
    checkpoint: Path,
    **kind_fields: object,
) -> dict:
    """One sample as a JSON row with the keys every kind shares: ``text`` is what the command
    prints without --json (a text sample's continuation, a tune's ABC, a MIDI sample's events),
    ``tokens`` the tokens in it, and the sampling settings that drew it; ``kind_fields`` follow
    (``abc``, ``midi`` and the tune conditioning, or the MIDI event counts)."""
    s = request.settings
    return {
        "schema": SAMPLE_SCHEMA,
        "kind": kind,
        "index": index,
        "text": text,
        "prompt": request.prompt,
        "tokens": tokens,
        "finish_reason": finish_reason,
        "files": list(files),
        "seed": seed,
        "num_samples": request.num_samples,
        "temperature": s.temperature,
        "top_k": s.top_k,
        "top_p": s.top_p,
        "min_p": s.min_p,
        "repetition_penalty": s.repetition_penalty,
        "greedy": s.greedy,
        **kind_fields,
        "checkpoint": str(checkpoint),
    }


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
        if folder is not None and folder.exists() and not folder.is_dir() and not is_stdout(folder):
            raise GenseqError(f"{folder}: not a folder (a file has that name)")


def check_book(path: Path | None) -> None:
    """Refuse a tunebook path that cannot be written (a folder, or below a file), before
    anything is sampled."""
    if path is None or is_stdout(path):
        return
    if path.is_dir():
        raise GenseqError(f"{path}: is a folder; -o takes a tunebook file")
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise GenseqError(f"{above}: not a folder (a file has that name), so {path} cannot be made")


def is_stdout(path: Path | None) -> bool:
    """A path given as ``-``: standard output."""
    return path is not None and str(path) == "-"


def make_folders(*folders: Path | None) -> None:
    """Create the output folders that were given, after checking them all, so that a bad one
    leaves no new folder behind."""
    check_folders(*folders)
    for folder in folders:
        if folder is not None and not is_stdout(folder):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GenseqError(f"{folder}: cannot create the folder ({exc.strerror})") from None


def wav_soundfont(request: SampleRequest, program: int) -> Path | None:
    """The SoundFont the WAV files will play (None: sine tones, or no --wav), chosen before
    anything is sampled so that a bad one fails first, and said once on stderr."""
    if request.wav is None:
        return None
    from genseq.music.soundfont import choose

    sound = choose(request.soundfont, program)
    if sound.note:
        request.note(sound.note)
    return sound.soundfont


def report_written(request: SampleRequest, written: Sequence[str]) -> None:
    """``wrote A, B, C and N more`` on stderr when files were written."""
    if written:
        more = f" and {len(written) - 3} more" if len(written) > 3 else ""
        request.note(f"wrote {', '.join(written[:3])}{more}")
