"""Rendering sampled tunes for a musician: 100 tunes to SVG sheet music and WAV audio.

    python benchmarks/render_speed.py [--tunes 100] [--no-record]

The tunes are sampled once from the shipped model (`genseq sample folk-tunes`, seed 1) into
one tunebook; then `genseq music render BOOK` runs as a user would run it, whole process
(start-up, imports, reading, engraving, synthesis, writing), once per output kind and once
with both. The WAV files play the SoundFont genseq finds (the note it prints is recorded), or
sine tones where no FluidSynth library is installed. Target: SVG and WAV for 100 tunes in
under 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import add_common_args, emit, genseq_exe, markdown_table, run_timed

TARGET_S = 30.0


def sample_book(exe: str, folder: Path, tunes: int) -> Path:
    book = folder / "book.abc"
    run_timed(
        [
            exe,
            "sample",
            "folk-tunes",
            "--num-samples",
            str(tunes),
            "--seed",
            "1",
            "-o",
            str(book),
            "--quiet",
        ]
    )
    return book


def render(exe: str, book: Path, folder: Path, kinds: list[str]) -> tuple[float, int, str]:
    """Wall seconds for one `genseq music render`, the files it wrote and its notes."""
    out = folder / "-".join(kinds)
    cmd = [exe, "music", "render", str(book)]
    for kind in kinds:
        cmd += [f"--{kind}", str(out)]
    run = run_timed(cmd)
    notes = " ".join(line for line in run.stderr.splitlines() if line.startswith("note:"))
    return run.wall_s, sum(1 for _ in out.iterdir()), notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunes", type=int, default=100)
    add_common_args(parser, shared=False)
    args = parser.parse_args()
    exe = genseq_exe()
    rows, sound = [], ""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        book = sample_book(exe, folder, args.tunes)
        for kinds in (["svg"], ["wav"], ["svg", "wav"]):
            seconds, files, notes = render(exe, book, folder, kinds)
            sound = sound or notes
            per_tune = 1000 * seconds / args.tunes
            rows.append([" + ".join(kinds), args.tunes, files, f"{seconds:.1f}", f"{per_tune:.0f}"])
    table = markdown_table(["outputs", "tunes", "files", "wall s", "ms/tune"], rows)
    total = float(rows[-1][3])
    verdict = "meets" if total < TARGET_S else "misses"
    notes = f"SVG and WAV together: {total:.1f} s, {verdict} the {TARGET_S:.0f} s target."
    notes += f" Sound: {sound or 'as found'}"
    emit(f"Rendering {args.tunes} sampled tunes to SVG and WAV", table, args, notes)


if __name__ == "__main__":
    main()
