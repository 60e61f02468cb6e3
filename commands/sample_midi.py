"""`genseq sample` for MIDI checkpoints: one .mid per sample, and WAV and piano rolls."""

from __future__ import annotations

import sys
from pathlib import Path

from genseq.commands._common import print_json, stdout


def sample_midi_command(
    ckpt,
    settings,
    num_samples: int,
    seed: int | None,
    constrain: bool,
    primer_midi: Path | None,
    primer_abc: Path | None,
    num_steps: int | None,
    seconds: float | None,
    tempo: float,
    output: Path | None,
    wav: Path | None,
    png: Path | None,
    json_out: bool,
    quiet: bool,
) -> None:
    """Sample pieces and write them where asked; without -o, --wav or --png the events of
    each sample are printed, one line each."""
    from genseq.errors import GenseqError
    from genseq.music import render
    from genseq.music.midi_sampling import primer_events, sample_midi, steps_for

    steps = steps_for(ckpt, num_steps=num_steps, seconds=seconds, tempo=tempo)
    primer = primer_events(ckpt, primer_midi=primer_midi, primer_abc=primer_abc, tempo=tempo)
    if seed is None:  # drawn once the request is known to be good, and shown to repeat it
        import random

        seed = random.SystemRandom().randrange(2**31)
        if not quiet:
            print(f"seed: {seed}", file=sys.stderr)
    for folder in (output, wav, png):
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GenseqError(f"{folder}: cannot create the folder ({exc.strerror})") from None
    samples = sample_midi(
        ckpt,
        primer,
        settings,
        num_samples=num_samples,
        steps=steps,
        seed=seed,
        constrain=constrain,
    )
    melody = ckpt.level == "midi-melody"
    # A melody's steps last as --tempo says; a performance's times are seconds already.
    qpm = tempo if melody else 120.0
    written: list[str] = []
    for s in samples:
        name = f"sample_{s.index + 1:03d}"
        files = []
        if s.finish_reason != "eos" and not quiet:
            print(
                f"note: sample {s.index + 1} ran out of events before its length "
                f"({s.new_events:,} events)",
                file=sys.stderr,
            )
        if s.note_count == 0 and not quiet:
            print(f"note: sample {s.index + 1} has no notes", file=sys.stderr)
        tune = s.tune_notes()
        if output is not None:
            path = output / f"{name}.mid"
            if melody:
                files.append(render.write_midi(tune, path, tempo_qpm=qpm))
            else:
                files.append(render.write_performance_midi(s.performance or [], path))
        if wav is not None:
            files.append(render.write_wav(tune, wav / f"{name}.wav", tempo_qpm=qpm))
        if png is not None:
            title = f"genseq sample {s.index + 1} (seed {seed})"
            files.append(render.write_piano_roll(tune, png / f"{name}.png", qpm, title))
        written += map(str, files)
        if json_out:
            print_json(
                {
                    "schema": 1,
                    "index": s.index,
                    "events": len(s.events),
                    "new_events": s.new_events,
                    "primer_events": len(primer),
                    "notes": s.note_count,
                    "finish_reason": s.finish_reason,
                    "seed": seed,
                    "constrained": constrain,
                    "files": list(map(str, files)),
                    "checkpoint": str(ckpt.path),
                }
            )
        elif output is None and wav is None and png is None:
            out = stdout()
            out.write(" ".join(s.events) + "\n")
            out.flush()
    if written and not quiet:
        shown = ", ".join(written[:3]) + (
            f" and {len(written) - 3} more" if len(written) > 3 else ""
        )
        print(f"wrote {shown}", file=sys.stderr)
