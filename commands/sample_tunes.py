"""`genseq sample` for ABC checkpoints: tunes as a tunebook, and MIDI, WAV and piano rolls."""

from __future__ import annotations

import sys
from pathlib import Path

from genseq.commands._common import print_json, stdout


def sample_tunes_command(
    ckpt,
    text: str,
    settings,
    num_samples: int,
    max_new_tokens: int,
    seed: int,
    constrain: bool,
    form,
    meter: str | None,
    key: str | None,
    mode: str | None,
    output: Path | None,
    midi: Path | None,
    wav: Path | None,
    png: Path | None,
    tempo: float,
    program: int,
    json_out: bool,
    quiet: bool,
) -> None:
    """Sample tunes and write them where asked; a tune that cannot be played is reported."""
    from genseq.errors import GenseqError
    from genseq.fileio import atomic_write_text
    from genseq.music.abc_lexer import AbcError
    from genseq.music.notes import tune_notes
    from genseq.music.tune_sampling import build_prompt, sample_tunes

    prompt = build_prompt(ckpt, text, meter=meter, key=key, mode=mode)
    tunes = sample_tunes(
        ckpt,
        prompt,
        settings,
        num_samples=num_samples,
        max_new_tokens=max_new_tokens,
        seed=seed,
        constrain=constrain,
        form=form,
        tempo=tempo,
    )
    # Folders only now: a prompt the header, the grammar or the form refuses leaves none.
    for folder in (midi, wav, png):
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GenseqError(f"{folder}: cannot create the folder ({exc.strerror})") from None
    book = "\n".join(t.abc for t in tunes)
    written: list[str] = []
    for t in tunes:
        name = f"tune_{t.index + 1:03d}"
        if t.finish_reason != "eos" and not quiet:
            print(
                f"note: tune {t.index + 1} did not end within --max-new-tokens {max_new_tokens}",
                file=sys.stderr,
            )
        if not (midi or wav or png):
            continue
        try:
            notes = tune_notes(t.tokens)
        except AbcError as exc:
            if not quiet:
                print(f"note: tune {t.index + 1} cannot be played ({exc})", file=sys.stderr)
            continue
        from genseq.music import render

        if midi is not None:
            path = render.write_midi(notes, midi / f"{name}.mid", tempo, program, t.title)
            written.append(str(path))
        if wav is not None:
            written.append(str(render.write_wav(notes, wav / f"{name}.wav", tempo_qpm=tempo)))
        if png is not None:
            path = render.write_piano_roll(
                notes, png / f"{name}.png", tempo_qpm=tempo, title=t.title
            )
            written.append(str(path))
    if output is not None:
        try:
            atomic_write_text(output, book)
        except OSError as exc:
            raise GenseqError(f"{output}: cannot write ({exc.strerror})") from None
        written.insert(0, str(output))
    if json_out:
        for t in tunes:
            print_json(
                {
                    "schema": 1,
                    "index": t.index,
                    "abc": t.abc,
                    "tokens": len(t.tokens),
                    "finish_reason": t.finish_reason,
                    "seed": seed,
                    "constrained": constrain,
                    "form": None if form is None or not constrain else vars(form),
                    "checkpoint": str(ckpt.path),
                }
            )
    elif output is None:
        out = stdout()
        out.write(book)
        out.flush()
    if written and not quiet:
        shown = ", ".join(written[:3]) + (
            f" and {len(written) - 3} more" if len(written) > 3 else ""
        )
        print(f"wrote {shown}", file=sys.stderr)
