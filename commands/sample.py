"""`genseq sample`: generate text or tunes from a checkpoint; text on stdout, streamed.

An ABC checkpoint samples whole tunes: header conditioning (--meter, --key, --mode), the
grammar constraint (--no-constrain to compare), a tunebook on stdout or in -o, and MIDI, WAV
and piano-roll files on request. A MIDI checkpoint (midi-melody, midi-performance) samples
pieces of a given length from an optional MIDI or ABC primer, written as .mid files
(``sample_midi``).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from genseq.commands._common import (
    DeviceOpt,
    EncodingErrorsOpt,
    JsonOpt,
    QuietOpt,
    print_json,
    stdout,
)

Opt = typer.Option


class TuneForm(StrEnum):
    folk = "folk"
    free = "free"


def _refuse(flags: dict, why: str) -> None:
    """One usage error naming every flag of ``flags`` that was given."""
    from genseq.errors import UsageError

    given = [name for name, value in flags.items() if value is not None]
    if given:
        raise UsageError(f"{', '.join(given)}: {why}")


def _part_form(form: TuneForm, bars_per_part: int | None, parts: int | None):
    """The form tunes are sampled with (None: free)."""
    from genseq.music.abc_constraint import PartForm

    if form == TuneForm.free:
        _refuse(
            {"--bars-per-part": bars_per_part, "--parts": parts},
            "only with --form folk (free leaves the form to the model)",
        )
        return None
    return PartForm(bars_per_part, 2 if parts is None else parts)


def _read_prompt(prompt: str | None, prompt_file: str | None, encoding_errors: str) -> str:
    from genseq.errors import GenseqError, UsageError

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
    if prompt_file == "-":
        if sys.stdin is None:
            raise UsageError("--prompt-file -: standard input is closed")
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        name = "<stdin>"
    else:
        try:
            data = Path(prompt_file).read_bytes()
        except OSError as exc:
            raise GenseqError(f"{prompt_file}: {exc.strerror}") from None
        name = prompt_file
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8", errors=encoding_errors)
    except UnicodeDecodeError as exc:
        raise GenseqError(
            f"{name}: not valid UTF-8 (byte {data[exc.start]:#04x} at offset "
            f"{exc.start}); pass --encoding-errors replace"
        ) from None


def sample(
    checkpoint: Annotated[
        Path, typer.Argument(help="A run directory or checkpoint directory.", show_default=False)
    ],
    prompt: Annotated[
        str | None, Opt("--prompt", "-p", help="Text to continue.", show_default=False)
    ] = None,
    prompt_file: Annotated[
        str | None,
        Opt(
            "--prompt-file",
            "-f",
            help="Read the prompt from a file (- for standard input).",
            show_default=False,
        ),
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        Opt(
            "--max-new-tokens",
            "-n",
            help="Tokens to generate per sample [default: 500; ABC: 1000, the tune length limit].",
            show_default=False,
        ),
    ] = None,
    temperature: Annotated[
        float, Opt(help="Softmax temperature; lower is more conservative, 0 is greedy.")
    ] = 1.0,
    top_k: Annotated[
        int | None, Opt(help="Sample among the k most likely tokens.", show_default=False)
    ] = None,
    top_p: Annotated[
        float | None,
        Opt(
            help="Nucleus sampling: the smallest set of tokens with this probability.",
            show_default=False,
        ),
    ] = None,
    min_p: Annotated[
        float | None,
        Opt(help="Drop tokens below min-p x the top token's probability.", show_default=False),
    ] = None,
    repetition_penalty: Annotated[float, Opt(help="> 1 discourages tokens already used.")] = 1.0,
    greedy: Annotated[bool, Opt("--greedy", help="Always take the most likely token.")] = False,
    num_samples: Annotated[int, Opt(help="Samples to draw (decoded together as one batch).")] = 1,
    seed: Annotated[
        int | None,
        Opt(
            "--seed",
            "-s",
            help="Seed; the same seed, checkpoint and device give the same text.",
            show_default=False,
        ),
    ] = None,
    stop: Annotated[
        list[str] | None,
        Opt(
            "--stop",
            help="End a sample at this string (repeatable; not included).",
            show_default=False,
        ),
    ] = None,
    echo: Annotated[
        bool, Opt("--echo/--no-echo", help="Print the prompt before the continuation.")
    ] = True,
    meter: Annotated[
        str | None, Opt("--meter", help="ABC: the tunes' meter, e.g. 6/8.", show_default=False)
    ] = None,
    key: Annotated[
        str | None, Opt("--key", help="ABC: the tunes' tonic, e.g. D or Bb.", show_default=False)
    ] = None,
    mode: Annotated[
        str | None,
        Opt("--mode", help="ABC: maj, min, dor, mix, phr, lyd or loc.", show_default=False),
    ] = None,
    constrain: Annotated[
        bool,
        Opt(
            "--constrain/--no-constrain",
            help="ABC: mask tokens that would break the tune (bars, repeats, length).",
        ),
    ] = True,
    form: Annotated[
        TuneForm,
        Opt(
            "--form",
            help="ABC: folk gives every tune --parts parts of --bars-per-part bars, each "
            "ending on the tonic triad and the tune on its tonic; free leaves form to the model.",
        ),
    ] = TuneForm.folk,
    bars_per_part: Annotated[
        int | None,
        Opt(
            "--bars-per-part",
            help="ABC with --form folk: bars in each part [default: 8, or 4 in bars longer "
            "than 4/4 such as 9/8, as the folk corpus writes them].",
            show_default=False,
        ),
    ] = None,
    parts: Annotated[
        int | None,
        Opt(
            "--parts",
            help="ABC with --form folk: parts in each tune (2: AB, each part repeated or "
            "not as the model chooses) [default: 2].",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        Opt(
            "--output",
            "-o",
            help="ABC: write the tunebook here. MIDI: write one .mid per sample in this folder.",
            show_default=False,
        ),
    ] = None,
    midi: Annotated[
        Path | None,
        Opt("--midi", help="ABC: write one .mid per tune here (MIDI: as -o).", show_default=False),
    ] = None,
    wav: Annotated[
        Path | None, Opt("--wav", help="ABC: write one .wav per tune here.", show_default=False)
    ] = None,
    png: Annotated[
        Path | None,
        Opt("--png", help="ABC: write one piano-roll .png per tune here.", show_default=False),
    ] = None,
    tempo: Annotated[
        float,
        Opt(
            "--tempo", help="ABC and MIDI melody: quarter notes per minute (also an ABC primer's)."
        ),
    ] = 120.0,
    program: Annotated[
        int | None,
        Opt(
            "--program",
            help="ABC: the General MIDI program (0-127, as pretty_midi counts) the MIDI files "
            "play [default: 40, Violin: the fiddle].",
            show_default=False,
        ),
    ] = None,
    primer_midi: Annotated[
        Path | None,
        Opt(
            "--primer-midi",
            help="MIDI models: continue this MIDI file (read as the training files were).",
            show_default=False,
        ),
    ] = None,
    primer_abc: Annotated[
        Path | None,
        Opt(
            "--primer-abc",
            help="MIDI models: continue the first tune of this ABC file.",
            show_default=False,
        ),
    ] = None,
    num_steps: Annotated[
        int | None,
        Opt(
            "--num-steps",
            help="MIDI models: length after the primer in steps (melody: grid steps "
            "[default: 8 bars of 4/4]; performance: 10 ms steps).",
            show_default=False,
        ),
    ] = None,
    seconds: Annotated[
        float | None,
        Opt(
            "--seconds",
            help="MIDI models: length after the primer in seconds [performance default: 10].",
            show_default=False,
        ),
    ] = None,
    device: DeviceOpt = "cpu",
    encoding_errors: EncodingErrorsOpt = "strict",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Generate text, tunes or MIDI from a trained model."""
    import math
    import random

    from genseq.checkpoint import load_checkpoint
    from genseq.device import resolve_device
    from genseq.generate import encode_prompt, generate
    from genseq.sample import SamplingSettings

    settings = SamplingSettings(
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        greedy=greedy,
    )
    settings.validate()
    from genseq.errors import UsageError

    if max_new_tokens is not None and max_new_tokens < 1:
        raise UsageError("--max-new-tokens must be at least 1")
    if num_samples < 1:
        raise UsageError("--num-samples must be at least 1")
    if not (math.isfinite(tempo) and tempo > 0):
        raise UsageError("--tempo must be a positive number")
    if program is not None and not 0 <= program <= 127:
        raise UsageError("--program must be a General MIDI program, 0-127")
    text = _read_prompt(prompt, prompt_file, encoding_errors)
    ckpt = load_checkpoint(checkpoint, resolve_device(device))
    music = {"--meter": meter, "--key": key, "--mode": mode, "--output": output}
    music |= {"--midi": midi, "--wav": wav, "--png": png}
    music |= {"--bars-per-part": bars_per_part, "--parts": parts, "--program": program}
    midi_only = {"--primer-midi": primer_midi, "--primer-abc": primer_abc}
    midi_only |= {"--num-steps": num_steps, "--seconds": seconds}
    from genseq.tokenization import MIDI_LEVELS

    if ckpt.level in MIDI_LEVELS:
        refused = {"--prompt/--prompt-file": text or None, "--stop": stop or None}
        refused |= {"--max-new-tokens": max_new_tokens, "--meter": meter, "--key": key}
        refused |= {"--mode": mode, "--bars-per-part": bars_per_part, "--parts": parts}
        refused |= {"--program": program}
        _refuse(
            refused,
            f"not for MIDI models ({ckpt.level} level here); use --primer-midi/--primer-abc "
            "and --num-steps/--seconds",
        )
        if output is not None and midi is not None and output != midi:
            raise UsageError("give -o or --midi (the same folder of .mid files), not both")
        from genseq.commands.sample_midi import sample_midi_command

        sample_midi_command(
            ckpt,
            settings,
            num_samples,
            seed,
            constrain,
            primer_midi,
            primer_abc,
            num_steps,
            seconds,
            tempo,
            output or midi,
            wav,
            png,
            json_out,
            quiet,
        )
        return
    _refuse(midi_only, f"only for MIDI models ({ckpt.level} level here)")
    if ckpt.level == "abc":
        if stop:
            raise UsageError("--stop is for text models; a tune ends at its end-of-tune token")
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
            if not quiet:
                print(f"seed: {seed}", file=sys.stderr)
        from genseq.commands.sample_tunes import sample_tunes_command

        from genseq.music.render import FIDDLE

        sample_tunes_command(
            ckpt,
            text,
            settings,
            num_samples,
            max_new_tokens or 1000,
            seed,
            constrain,
            _part_form(form, bars_per_part, parts),
            meter,
            key,
            mode,
            output,
            midi,
            wav,
            png,
            tempo,
            FIDDLE if program is None else program,
            json_out,
            quiet,
        )
        return
    _refuse(music, f"only for ABC models ({ckpt.level} level here)")
    max_new_tokens = max_new_tokens or 500
    info = encode_prompt(ckpt.tokenizer, text)
    if info.unknown and not quiet:
        print(
            f"note: the prompt has pieces the model never saw, read as <unk>: "
            f"{', '.join(map(repr, info.unknown))}",
            file=sys.stderr,
        )
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
        if not quiet:
            print(f"seed: {seed}", file=sys.stderr)

    out = stdout()
    stream = num_samples == 1 and not json_out

    def on_text(_index: int, piece: str) -> None:
        out.write(piece)
        out.flush()

    if stream and echo and text:
        out.write(text)
        out.flush()
    samples = generate(
        ckpt,
        text,
        settings,
        max_new_tokens=max_new_tokens,
        num_samples=num_samples,
        stop=stop or (),
        seed=seed,
        on_text=on_text if stream else None,
    )
    for s in samples:
        full = (text if echo else "") + s.text
        if json_out:
            print_json(
                {
                    "schema": 1,
                    "index": s.index,
                    "prompt": text,
                    "text": s.text,
                    "tokens": s.tokens,
                    "finish_reason": s.finish_reason,
                    "seed": seed,
                    "temperature": temperature,
                    "top_k": top_k,
                    "top_p": top_p,
                    "checkpoint": str(ckpt.path),
                }
            )
        elif stream:
            if not full.endswith("\n"):
                out.write("\n")
        else:
            out.write(full if full.endswith("\n") else full + "\n")
            if s.index < num_samples - 1:
                out.write("\n")
    out.flush()
