"""`genseq sample`: generate text or tunes from a checkpoint; text on stdout, streamed.

An ABC checkpoint samples whole tunes: header conditioning (--rhythm, --meter, --key,
--mode), the grammar constraint (--no-constrain to compare), a tunebook on stdout or in -o,
and MIDI, WAV, piano-roll, sheet-music (SVG) and MusicXML files on request. A MIDI checkpoint
(midi-melody, midi-performance) samples pieces of a given length from an optional MIDI or ABC
primer, written as .mid files.

The options become one ``SampleRequest``; the checkpoint's kind picks the job (``sample_text``,
``sample_tunes``, ``sample_midi``) that refuses what it cannot use and reads its prompt, and
only then is the seed drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from genseq.commands._common import (
    DeviceOpt,
    EncodingErrorsOpt,
    JsonOpt,
    ProgramOpt,
    QuietOpt,
    SoundFontOpt,
    options_for,
)
from genseq.commands.choices import complete_mode
from genseq.commands.sample_request import SampleRequest, TuneForm

from genseq.music.header import TuneRhythm

if TYPE_CHECKING:
    from genseq.commands.sample_midi import MidiJob
    from genseq.commands.sample_text import TextJob
    from genseq.commands.sample_tunes import TuneJob

    from genseq.checkpoint import Checkpoint

Opt = typer.Option

MIDI_OPTIONS = ("primer_midi", "primer_abc", "num_steps", "seconds")  # SampleRequest fields


def sample(
    checkpoint: Annotated[
        str,
        typer.Argument(
            help="A run or checkpoint directory, or a shipped model's name (genseq models list).",
            show_default=False,
        ),
    ],
    prompt: Annotated[
        str | None,
        Opt(
            "--prompt",
            "-p",
            help="Text to continue.",
            show_default=False,
            rich_help_panel="Prompt and length",
        ),
    ] = None,
    prompt_file: Annotated[
        str | None,
        Opt(
            "--prompt-file",
            "-f",
            help="Read the prompt from a file (- for standard input).",
            show_default=False,
            rich_help_panel="Prompt and length",
        ),
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        Opt(
            "--max-new-tokens",
            "-n",
            help="Tokens to generate per sample [default: 500; ABC: 1000, the tune length limit].",
            show_default=False,
            rich_help_panel="Prompt and length",
        ),
    ] = None,
    temperature: Annotated[
        float,
        Opt(
            help="Softmax temperature; lower is more conservative, 0 is greedy.",
            rich_help_panel="Sampling",
        ),
    ] = 1.0,
    top_k: Annotated[
        int | None,
        Opt(
            help="Sample among the k most likely tokens.",
            show_default=False,
            rich_help_panel="Sampling",
        ),
    ] = None,
    top_p: Annotated[
        float | None,
        Opt(
            help="Nucleus sampling: the smallest set of tokens with this probability.",
            show_default=False,
            rich_help_panel="Sampling",
        ),
    ] = None,
    min_p: Annotated[
        float | None,
        Opt(
            help="Drop tokens below min-p x the top token's probability.",
            show_default=False,
            rich_help_panel="Sampling",
        ),
    ] = None,
    repetition_penalty: Annotated[
        float, Opt(help="> 1 discourages tokens already used.", rich_help_panel="Sampling")
    ] = 1.0,
    greedy: Annotated[
        bool, Opt("--greedy", help="Always take the most likely token.", rich_help_panel="Sampling")
    ] = False,
    num_samples: Annotated[
        int,
        Opt(help="Samples to draw (decoded together as one batch).", rich_help_panel="Sampling"),
    ] = 1,
    seed: Annotated[
        int | None,
        Opt(
            "--seed",
            "-s",
            help="Seed; the same seed, checkpoint and device give the same text.",
            show_default=False,
            rich_help_panel="Sampling",
        ),
    ] = None,
    stop: Annotated[
        list[str] | None,
        Opt(
            "--stop",
            help="End a sample at this string (repeatable; not included).",
            show_default=False,
            rich_help_panel="Prompt and length",
        ),
    ] = None,
    echo: Annotated[
        bool,
        Opt(
            "--echo/--no-echo",
            help="Print the prompt before the continuation.",
            rich_help_panel="Prompt and length",
        ),
    ] = True,
    rhythm: Annotated[
        TuneRhythm | None,
        Opt(
            "--rhythm",
            help="ABC: the tunes' rhythm (R:), e.g. jig; the model picks a meter to suit.",
            case_sensitive=False,
            show_default=False,
            rich_help_panel="Tunes (ABC models)",
        ),
    ] = None,
    meter: Annotated[
        str | None,
        Opt(
            "--meter",
            help="ABC: the tunes' meter, e.g. 6/8.",
            show_default=False,
            rich_help_panel="Tunes (ABC models)",
        ),
    ] = None,
    key: Annotated[
        str | None,
        Opt(
            "--key",
            help="ABC: the tunes' tonic, e.g. D or Bb.",
            show_default=False,
            rich_help_panel="Tunes (ABC models)",
        ),
    ] = None,
    mode: Annotated[
        str | None,
        Opt(
            "--mode",
            help="ABC: maj, min, dor, mix, phr, lyd or loc.",
            show_default=False,
            rich_help_panel="Tunes (ABC models)",
            autocompletion=complete_mode,
        ),
    ] = None,
    constrain: Annotated[
        bool,
        Opt(
            "--constrain/--no-constrain",
            help="ABC: mask tokens that would break the tune (bars, repeats, length).",
            rich_help_panel="Tunes (ABC models)",
        ),
    ] = True,
    form: Annotated[
        TuneForm,
        Opt(
            "--form",
            help="ABC: folk gives every tune --parts parts of --bars-per-part bars, each "
            "ending on the tonic triad and the tune on its tonic; free leaves form to the model.",
            rich_help_panel="Tunes (ABC models)",
        ),
    ] = TuneForm.folk,
    bars_per_part: Annotated[
        int | None,
        Opt(
            "--bars-per-part",
            help="ABC with --form folk: bars in each part [default: 8, or 4 in bars longer "
            "than 4/4 such as 9/8, as the folk corpus writes them].",
            show_default=False,
            rich_help_panel="Tunes (ABC models)",
        ),
    ] = None,
    parts: Annotated[
        int | None,
        Opt(
            "--parts",
            help="ABC with --form folk: parts in each tune (2: AB, each part repeated or "
            "not as the model chooses) [default: 2].",
            show_default=False,
            rich_help_panel="Tunes (ABC models)",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        Opt(
            "--output",
            "-o",
            help="ABC: write the tunebook here (an existing book gets the new tunes appended, "
            "X: numbers continuing). MIDI: write one .mid per sample in this folder. "
            "- : standard output (a MIDI model's .mid bytes: one sample only).",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    midi: Annotated[
        Path | None,
        Opt(
            "--midi",
            help="ABC: write one .mid per tune here (MIDI: as -o).",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    wav: Annotated[
        Path | None,
        Opt(
            "--wav",
            help="ABC: write one .wav per tune here.",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    soundfont: SoundFontOpt = None,
    png: Annotated[
        Path | None,
        Opt(
            "--png",
            help="ABC: write one piano-roll .png per tune here.",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    svg: Annotated[
        Path | None,
        Opt(
            "--svg",
            help="ABC: engrave one sheet-music .svg per tune here.",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    musicxml: Annotated[
        Path | None,
        Opt(
            "--musicxml",
            help="ABC: write one .musicxml per tune here (for MuseScore, Finale, Sibelius...).",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        Opt(
            "--overwrite",
            help="Number files from 1 again, replacing those there, and replace -o's tunebook "
            "(default: new files continue the numbering, new tunes are appended).",
            rich_help_panel="Output files",
        ),
    ] = False,
    tempo: Annotated[
        float | None,
        Opt(
            "--tempo",
            help="ABC and MIDI melody: quarter notes per minute (also an ABC primer's) "
            "[default: a tune's own Q: tempo, else its rhythm's usual one, else 120].",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    program: ProgramOpt = None,
    primer_midi: Annotated[
        Path | None,
        Opt(
            "--primer-midi",
            help="MIDI models: continue this MIDI file (read as the training files were).",
            show_default=False,
            rich_help_panel="MIDI models",
        ),
    ] = None,
    primer_abc: Annotated[
        Path | None,
        Opt(
            "--primer-abc",
            help="MIDI models: continue the first tune of this ABC file.",
            show_default=False,
            rich_help_panel="MIDI models",
        ),
    ] = None,
    num_steps: Annotated[
        int | None,
        Opt(
            "--num-steps",
            help="MIDI models: length after the primer in steps (melody: grid steps "
            "[default: 8 bars of 4/4]; performance: 10 ms steps).",
            show_default=False,
            rich_help_panel="MIDI models",
        ),
    ] = None,
    seconds: Annotated[
        float | None,
        Opt(
            "--seconds",
            help="MIDI models: length after the primer in seconds [performance default: 10].",
            show_default=False,
            rich_help_panel="MIDI models",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    encoding_errors: EncodingErrorsOpt = "strict",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Generate text, tunes or MIDI from a trained model."""
    from dataclasses import replace

    from genseq.commands.sample_request import read_prompt, seed_for

    from genseq.checkpoint import load_checkpoint
    from genseq.device import resolve_device
    from genseq.sample import SamplingSettings

    settings = options_for(SamplingSettings, locals())
    request = options_for(
        SampleRequest, locals(), settings=settings, stop=tuple(stop or ()), json=json_out, prompt=""
    )
    # The prompt is read once every option is known to be good.
    request = replace(request, prompt=read_prompt(prompt, prompt_file, encoding_errors))
    ckpt = load_checkpoint(checkpoint, resolve_device(device))
    job = prepare_job(ckpt, request)
    job.run(seed_for(request))


def prepare_job(ckpt: Checkpoint, request: SampleRequest) -> TextJob | TuneJob | MidiJob:
    """The job for the checkpoint's kind, ready to run: the options it cannot use are refused
    and its prompt or primer is read, so that a bad request fails before a seed is drawn."""
    from genseq.tokenization import MIDI_LEVELS

    if ckpt.level in MIDI_LEVELS:
        from genseq.commands.sample_midi import MidiJob

        return MidiJob.prepare(ckpt, request)
    request.refuse(MIDI_OPTIONS, f"only for MIDI models ({ckpt.level} level here)")
    if ckpt.level == "abc":
        from genseq.commands.sample_tunes import TuneJob

        return TuneJob.prepare(ckpt, request)
    from genseq.commands.sample_text import TextJob

    return TextJob.prepare(ckpt, request)
