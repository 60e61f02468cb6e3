"""`genseq sample` for MIDI checkpoints: one .mid per sample, and WAV and piano rolls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from genseq.commands._common import print_json, stdout
from genseq.commands.sample_request import (
    SampleRequest,
    is_stdout,
    make_folders,
    report_written,
    sample_row,
    wav_soundfont,
)

from genseq.errors import UsageError

if TYPE_CHECKING:
    from genseq.checkpoint import Checkpoint
    from genseq.music.midi_sampling import MidiSample

# SampleRequest fields, in the order a refusal names them
NOT_FOR_MIDI = (
    "prompt",
    "stop",
    "max_new_tokens",
    "rhythm",
    "meter",
    "key",
    "mode",
    "bars_per_part",
    "parts",
    "program",
)


@dataclass(frozen=True)
class MidiJob:
    ckpt: Checkpoint
    request: SampleRequest
    steps: int  # the length asked for, after the primer, in the model's steps
    primer: list[str]
    soundfont: Path | None  # what the WAV files play; None: sine tones

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
        if r.output is not None and r.midi is not None and r.output != r.midi:
            raise UsageError("give -o or --midi (the same folder of .mid files), not both")
        if is_stdout(r.output or r.midi):
            _check_stdout(r)
        steps = steps_for(ckpt, num_steps=r.num_steps, seconds=r.seconds, tempo=r.playback_tempo)
        primer = primer_events(
            ckpt, primer_midi=r.primer_midi, primer_abc=r.primer_abc, tempo=r.playback_tempo
        )
        # the WAV files play the piano, as the .mid files do (their program is 0)
        return cls(ckpt, request, steps, primer, wav_soundfont(request, 0))

    @property
    def folder(self) -> Path | None:
        """Where the .mid files go: -o, or --midi as its other name (None: none, or stdout)."""
        folder = self.request.output or self.request.midi
        return None if is_stdout(folder) else folder

    @property
    def to_stdout(self) -> bool:
        """-o - : the one sample's .mid bytes go to standard output."""
        return is_stdout(self.request.output or self.request.midi)

    def run(self, seed: int) -> None:
        """Sample the pieces and write them where asked; without -o, --wav or --png the events
        of each sample are printed, one line each."""
        from genseq.music.midi_sampling import sample_midi
        from genseq.output_names import claim_numbers

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
        for s in samples:
            self._note(s)
        places = [(self.folder, ".mid"), (r.wav, ".wav"), (r.png, ".png")]
        places = [(folder, suffix) for folder, suffix in places if folder is not None]
        written: list[str] = []
        with claim_numbers(places, len(samples), stem="sample", overwrite=r.overwrite) as names:
            for s in samples:
                files = self._write_files(s, seed, partial(names.path, s.index))
                written += files
                if r.json:
                    print_json(self._row(s, seed, files))
                elif self.to_stdout:
                    _write_stdout_midi(s, r.playback_tempo)
                elif self.folder is None and r.wav is None and r.png is None:
                    out = stdout()
                    out.write(" ".join(s.events) + "\n")
                    out.flush()
        report_written(r, written)

    def _note(self, s: MidiSample) -> None:
        """Note a sample cut short or silent."""
        r = self.request
        if s.finish_reason != "eos":
            r.note(
                f"note: sample {s.index + 1} ran out of events before its length "
                f"({s.new_events:,} events)"
            )
        if s.note_count == 0:
            r.note(f"note: sample {s.index + 1} has no notes")

    def _write_files(self, s: MidiSample, seed: int, path_in: Callable) -> list[str]:
        """The sample's MIDI, WAV and piano roll where asked; ``path_in(folder, suffix)``
        names each."""
        from genseq.music import render

        r = self.request
        notes, qpm = s.tune_notes(), s.playback_qpm(r.playback_tempo)
        files = []
        if self.folder is not None:
            files.append(s.write_midi(path_in(self.folder, ".mid"), r.playback_tempo))
        if r.wav is not None:
            files.append(self._write_wav(s, path_in(r.wav, ".wav"), qpm))
        if r.png is not None:
            title = f"genseq sample {s.index + 1} (seed {seed})"
            files.append(render.write_piano_roll(notes, path_in(r.png, ".png"), qpm, title))
        return [str(f) for f in files]

    def _write_wav(self, s: MidiSample, path: Path, qpm: float) -> Path:
        """A melody as ``render.write_wav`` plays tunes; a performance with its velocities."""
        from genseq.music import render

        if s.performance is not None:
            return render.write_performance_wav(s.performance, path, soundfont=self.soundfont)
        return render.write_wav(s.tune_notes(), path, tempo_qpm=qpm, soundfont=self.soundfont)

    def _row(self, s: MidiSample, seed: int, files: list[str]) -> dict:
        """The shared row, the .mid file beside the events' text, and the event counts."""
        return sample_row(
            self.request,
            kind="midi",
            index=s.index,
            text=" ".join(s.events),
            tokens=len(s.events),
            finish_reason=s.finish_reason,
            seed=seed,
            files=files,
            checkpoint=self.ckpt.path,
            midi=next((f for f in files if f.endswith(".mid")), None),
            events=len(s.events),
            new_events=s.new_events,
            primer_events=len(self.primer),
            notes=s.note_count,
            constrained=self.request.constrain,
        )


def _check_stdout(r: SampleRequest) -> None:
    """A .mid on standard output: one sample, and not onto a terminal."""
    import sys

    if r.json:
        raise UsageError("-o - and --json both write standard output; give one")
    if r.num_samples > 1:
        raise UsageError("-o -: standard output holds one .mid; use --num-samples 1 or a folder")
    if sys.stdout is not None and sys.stdout.isatty():
        raise UsageError("-o -: will not write MIDI bytes to a terminal; redirect or pipe it")


def _write_stdout_midi(s: MidiSample, tempo: float) -> None:
    """The sample's .mid bytes on standard output (rendered through a temporary file, as the
    MIDI writers write files)."""
    import tempfile

    out = stdout()
    with tempfile.TemporaryDirectory(prefix="genseq-") as tmp:
        data = Path(s.write_midi(Path(tmp) / "sample.mid", tempo)).read_bytes()
    out.flush()
    out.buffer.write(data)
    out.buffer.flush()
