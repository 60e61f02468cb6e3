"""Sampling tunes from an ABC checkpoint: header conditioning, ABC prompts, valid output.

The prompt of a tune is ``<eos>`` (a tune starts), then its header tokens (``R:jig`` from
``--rhythm``, ``M:6/8`` from ``--meter``, ``K:Ddor`` from ``--key``/``--mode``), then any
bars to continue. A rhythm comes first, so that the model asked for a jig picks its meter.
A model trained on tunes moved to one tonic is prompted in that tonic, and its samples are
moved back to the key that was asked for. Each sample becomes a tunebook entry
(``abc_writer``) and, on request, MIDI, WAV and a piano roll (``notes`` + ``render``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from genseq.checkpoint import Checkpoint
from genseq.errors import UsageError
from genseq.generate import generate
from genseq.music.abc_constraint import AbcConstraint, PartForm
from genseq.music.abc_lexer import (
    AbcError,
    LexOptions,
    interval,
    key_token,
    parse_key,
    parse_meter,
    split_tunebook,
    tokenize_fragment,
    tokenize_tune,
    transpose_tokens,
)
from genseq.music.abc_vocab import info
from genseq.music.abc_writer import header_tempo, tune_text
from genseq.music.header import DEFAULT_TEMPO, rhythm_token
from genseq.sample import SamplingSettings

TUNE_TOKENS = 1000  # a tune's length limit when none is asked for


@dataclass
class Tune:
    index: int
    tokens: list[str]  # the whole tune (prompt + sample), in the key asked for
    abc: str
    finish_reason: str  # eos (a complete tune) | length (cut off at --max-new-tokens)
    title: str = ""
    tempo: float = DEFAULT_TEMPO  # quarter notes per minute: its Q: and its MIDI and WAV


@dataclass
class TunePrompt:
    tokens: list[str]  # in the model's own key
    shift: tuple[int, int]  # (letter steps, semitones) from the model's key to the one asked


def build_prompt(
    ckpt: Checkpoint,
    text: str = "",
    *,
    meter: str | None = None,
    key: str | None = None,
    mode: str | None = None,
    rhythm: str | None = None,
) -> TunePrompt:
    """The prompt tokens for ``text`` (a tune with a header, or bars) and the header options."""
    tok = ckpt.tokenizer
    if rhythm is not None:
        _check_rhythm(tok, rhythm)
    options: LexOptions = tok.options  # as the training tunes were read
    moved_to = options.transpose
    plain = replace(options, transpose=None)
    tokens: list[str] = []
    try:
        if re.search(r"^\s*K:", text, re.MULTILINE):
            tunes = split_tunebook(text if text.lstrip().startswith("X:") else "X:1\n" + text)
            if not tunes:
                raise UsageError("the prompt has a K: line but no tune")
            tokens = tokenize_tune(tunes[0].text, plain)
            tokens = _strip_end(tokens)
            if meter or key or mode or rhythm:
                raise UsageError(
                    "the prompt has its own header: leave out --rhythm/--meter/--key/--mode"
                )
        else:
            header = [rhythm_token(rhythm)] if rhythm is not None else []
            if meter is not None:
                m = parse_meter(meter)
                header.append(f"M:{m[0]}/{m[1]}")
            if key is not None or mode is not None:
                if meter is None:
                    raise UsageError("--key and --mode need --meter (the header starts with M:)")
                tonic, key_mode = parse_key((key or "C") + (mode or ""))
                if key is None:
                    tonic = moved_to or "C"
                header.append(key_token(tonic, key_mode))
            if text.strip():
                if meter is None or (key is None and mode is None):
                    raise UsageError(
                        "an ABC prompt without a header needs --meter and --key "
                        "(or give a whole tune start with M: and K: lines)"
                    )
                meter_value = parse_meter(meter)
                tokens = header + tokenize_fragment(text, plain, meter_value)
            else:
                tokens = header
    except AbcError as exc:
        raise UsageError(f"the ABC prompt cannot be read: {exc}") from None
    shift = (0, 0)
    if moved_to and any(info(t).kind == "key" for t in tokens):
        asked = next(info(t).tonic for t in tokens if info(t).kind == "key")
        shift = interval(moved_to, asked)
        tokens = transpose_tokens(tokens, -shift[0], -shift[1])
    missing = [t for t in tokens if t not in tok.ids]
    if missing:
        kinds = {info(t).kind for t in missing}
        known = ""
        if kinds & {"meter", "key"}:
            names = sorted(t for t in tok.ids if info(t).kind in kinds & {"meter", "key"})
            known = f"; this model knows {', '.join(names)}"
        raise UsageError(
            f"the model never saw {', '.join(dict.fromkeys(missing))} in training{known}"
        )
    return TunePrompt(tokens, shift)


def _check_rhythm(tok, rhythm: str) -> None:
    """A rhythm the model can be asked for: one it has a token for."""
    known = sorted(info(t).rhythm for t in tok.ids if info(t).kind == "rhythm")
    if not known:
        raise UsageError(
            "--rhythm: this model has no rhythm tokens (its training tunes had no R: field "
            "it read); sample without --rhythm"
        )
    if rhythm_token(rhythm) not in tok.ids:
        raise UsageError(
            f"--rhythm {rhythm}: the model never saw it in training; "
            f"this model knows {', '.join(known)}"
        )


def _strip_end(tokens: list[str]) -> list[str]:
    """A prompt tune stops before its final bar line so that the model goes on."""
    while tokens and tokens[-1] in ("|]", "||"):
        tokens = tokens[:-1]
    return tokens


def sample_tunes(
    ckpt: Checkpoint,
    prompt: TunePrompt,
    settings: SamplingSettings,
    *,
    num_samples: int = 1,
    max_new_tokens: int = TUNE_TOKENS,
    seed: int | None = None,
    constrain: bool = True,
    form: PartForm | None = None,
    tempo: float | None = None,
) -> list[Tune]:
    """Draw ``num_samples`` tunes (with the grammar constraint unless ``constrain`` is off,
    and with ``form``'s parts and cadences if given). Each tune's tempo is ``tempo`` if given,
    else the one its tempo token says, else ``DEFAULT_TEMPO``."""
    tok = ckpt.tokenizer
    ids = [tok.eos_id, *(tok.ids[t] for t in prompt.tokens)]
    constraint = None
    if constrain:
        constraint = AbcConstraint(
            tok, ids, max_tokens=len(ids) - 1 + max_new_tokens - 1, form=form
        )
    samples = generate(
        ckpt,
        settings=settings,
        max_new_tokens=max_new_tokens,
        num_samples=num_samples,
        seed=seed,
        constraint=constraint,
        prompt_ids=ids,
    )
    tunes = []
    for s in samples:
        tokens = prompt.tokens + tok.tokens_of(s.ids)
        if prompt.shift != (0, 0):
            try:
                tokens = transpose_tokens(tokens, *prompt.shift)
            except AbcError:
                pass  # an unreadable unconstrained sample stays in the model's key
        qpm = tempo or header_tempo(tokens) or DEFAULT_TEMPO
        tunes.append(Tune(s.index, tokens, "", s.finish_reason, "", qpm))
    return numbered(tunes, 1, seed)


def numbered(tunes: list[Tune], first: int, seed: int | None) -> list[Tune]:
    """The tunes as tunebook entries numbered from ``first``: ``X:`` and the title's number
    agree, so that tunes appended to a book continue its numbers."""
    out = []
    for t in tunes:
        number = first + t.index
        title = f"genseq tune {number}" + (f" (seed {seed})" if seed is not None else "")
        out.append(replace(t, abc=tune_text(t.tokens, number, title, t.tempo), title=title))
    return out
