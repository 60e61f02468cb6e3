"""`genseq sample` for MIDI checkpoints: one .mid per sample, and WAV and piano rolls."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from genseq.commands._common import print_json, stdout
from genseq.commands.sample_request import SampleRequest, make_folders, report_written

from genseq.errors import UsageError

if TYPE_CHECKING:
    from genseq.checkpoint import Checkpoint
    from genseq.music.midi_sampling import MidiSample

# SampleRequest fields, in the order a refusal names them
NOT_FOR_MIDI = (
    "prompt",
    "stop",
    "max_new_tokens",
    "meter",
    "key",
    "mode",
    "bars_per_part",
    "parts",
    "program",
)
NOTATION_OPTIONS = ("svg", "musicxml")  # sheet music is engraved from a tune's ABC


@dataclass(frozen=True)
class MidiJob:
    ckpt: Checkpoint
    request: SampleRequest
    steps: int  # the length asked for, after the primer, in the model's steps
    primer: list[str]

    @classmethod
    def prepare(cls, ckpt: Checkpoint, request: SampleRequest) -> MidiJob:
        """Refuse the text and tune options; read the length and the primer file."""
        from genseq.music.midi_sampling import primer_events, steps_for

        r = request
        r.refuse(
            NOT_FOR_MIDI,
            f"not for MIDI models ({ckpt.level} level here); use --primer-midi/--primer-abc "
            "and --num-steps/--seconds",
        )
        r.refuse(NOTATION_OPTIONS, f"only for ABC models ({ckpt.level} level here)")
        if r.output is not None and r.midi is not None and r.output != r.midi:
            raise UsageError("give -o or --midi (the same folder of .mid files), not both")
        steps = steps_for(ckpt, num_steps=r.num_steps, seconds=r.seconds, tempo=r.tempo)
        primer = primer_events(
            ckpt, primer_midi=r.primer_midi, primer_abc=r.primer_abc, tempo=r.tempo
        )
        return cls(ckpt, request, steps, primer)

    @property
    def folder(self) -> Path | None:
        """Where the .mid files go: -o, or --midi as its other name."""
        return self.request.output or self.request.midi

    def run(self, seed: int) -> None:
        """Sample the pieces and write them where asked; without -o, --wav or --png the events
        of each sample are printed, one line each."""
        from genseq.music.midi_sampling import sample_midi

        r = self.request
        make_folders(self.folder, r.wav, r.png)
        samples = sample_midi(
            self.ckpt,
            self.primer,
            r.settings,
            num_samples=r.num_samples,
            steps=self.steps,
            seed=seed,
            constrain=r.constrain,
        )
        written: list[str] = []
        for s in samples:
            files = self._write_files(s, seed)
            written += files
            if r.json:
                print_json(self._row(s, seed, files))
            elif self.folder is None and r.wav is None and r.png is None:
                out = stdout()
                out.write(" ".join(s.events) + "\n")
                out.flush()
        report_written(r, written)

    def _write_files(self, s: MidiSample, seed: int) -> list[str]:
        """Note a sample cut short or silent; write its MIDI, WAV and piano roll where asked."""
        from genseq.music import render

        r = self.request
        if s.finish_reason != "eos":
            r.note(
                f"note: sample {s.index + 1} ran out of events before its length "
                f"({s.new_events:,} events)"
            )
        if s.note_count == 0:
            r.note(f"note: sample {s.index + 1} has no notes")
        name = f"sample_{s.index + 1:03d}"
        notes, qpm = s.tune_notes(), s.playback_qpm(r.tempo)
        files = []
        if self.folder is not None:
            files.append(s.write_midi(self.folder / f"{name}.mid", r.tempo))
        if r.wav is not None:
            files.append(render.write_wav(notes, r.wav / f"{name}.wav", tempo_qpm=qpm))
        if r.png is not None:
            title = f"genseq sample {s.index + 1} (seed {seed})"
            files.append(render.write_piano_roll(notes, r.png / f"{name}.png", qpm, title))
        return [str(f) for f in files]

    def _row(self, s: MidiSample, seed: int, files: list[str]) -> dict:
        return {
            "schema": 1,
            "index": s.index,
            "events": len(s.events),
            "new_events": s.new_events,
            "primer_events": len(self.primer),
            "notes": s.note_count,
            "finish_reason": s.finish_reason,
            "seed": seed,
            "constrained": self.request.constrain,
            "files": files,
            "checkpoint": str(self.ckpt.path),
        }
