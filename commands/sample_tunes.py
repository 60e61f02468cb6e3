"""`genseq sample` for ABC checkpoints: tunes as a tunebook, and each tune's MIDI, WAV, piano
roll, sheet music (SVG) and MusicXML through the writer `genseq music render` shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from genseq.commands._common import print_json, stdout
from genseq.commands.sample_request import (
    SampleRequest,
    TuneForm,
    check_folders,
    make_folders,
    report_written,
)

from genseq.errors import GenseqError, UsageError

if TYPE_CHECKING:
    from genseq.checkpoint import Checkpoint
    from genseq.music.abc_constraint import PartForm
    from genseq.music.tune_files import TuneFolders
    from genseq.music.tune_sampling import Tune, TunePrompt


@dataclass(frozen=True)
class TuneJob:
    ckpt: Checkpoint
    request: SampleRequest
    prompt: TunePrompt
    form: PartForm | None  # None: free

    @classmethod
    def prepare(cls, ckpt: Checkpoint, request: SampleRequest) -> TuneJob:
        """Refuse what a tune cannot take; build the prompt, which checks header and bars."""
        from genseq.music.tune_sampling import build_prompt

        if request.stop:
            raise UsageError("--stop is for text models; a tune ends at its end-of-tune token")
        form = _part_form(request)
        check_folders(request.midi, request.wav, request.png, request.svg, request.musicxml)
        prompt = build_prompt(
            ckpt, request.prompt, meter=request.meter, key=request.key, mode=request.mode
        )
        return cls(ckpt, request, prompt, form)

    @property
    def max_new_tokens(self) -> int:
        from genseq.music.tune_sampling import TUNE_TOKENS

        return self.request.max_new_tokens or TUNE_TOKENS

    def run(self, seed: int) -> None:
        """Sample the tunes and write them where asked; a tune that cannot be played is
        reported, not fatal."""
        from genseq.music.tune_sampling import sample_tunes

        r = self.request
        tunes = sample_tunes(
            self.ckpt,
            self.prompt,
            r.settings,
            num_samples=r.num_samples,
            max_new_tokens=self.max_new_tokens,
            seed=seed,
            constrain=r.constrain,
            form=self.form,
            tempo=r.tempo,
        )
        make_folders(*self.folders.given)  # only now: a refused prompt leaves no folder
        written = [path for t in tunes for path in self._write_files(t)]
        book = "\n".join(t.abc for t in tunes)
        if r.output is not None:
            _write_book(r.output, book)
            written.insert(0, str(r.output))
        if r.json:
            for t in tunes:
                print_json(self._row(t, seed))
        elif r.output is None:
            out = stdout()
            out.write(book)
            out.flush()
        report_written(r, written)

    @property
    def folders(self) -> TuneFolders:
        from genseq.music.tune_files import TuneFolders

        r = self.request
        return TuneFolders(midi=r.midi, wav=r.wav, png=r.png, svg=r.svg, musicxml=r.musicxml)

    def _write_files(self, t: Tune) -> list[str]:
        """Note a tune cut short; write its MIDI, WAV, piano roll, SVG and MusicXML where
        asked."""
        from genseq.music.tune_files import TuneSource, tune_stem, write_tune_files

        r = self.request
        if t.finish_reason != "eos":
            limit = self.max_new_tokens
            r.note(f"note: tune {t.index + 1} did not end within --max-new-tokens {limit}")
        tune = TuneSource(t.tokens, t.abc, t.title, label=f"tune {t.index + 1}")
        name = tune_stem(t.index + 1)
        files = write_tune_files(tune, name, self.folders, r.tempo, r.program, r.note)
        return [str(f) for f in files]

    def _row(self, t: Tune, seed: int) -> dict:
        constrained = self.request.constrain
        return {
            "schema": 1,
            "index": t.index,
            "abc": t.abc,
            "tokens": len(t.tokens),
            "finish_reason": t.finish_reason,
            "seed": seed,
            "constrained": constrained,
            "form": None if self.form is None or not constrained else vars(self.form),
            "checkpoint": str(self.ckpt.path),
        }


def _part_form(request: SampleRequest) -> PartForm | None:
    """The form tunes are sampled with (None: free)."""
    from genseq.music.abc_constraint import PartForm

    if request.form == TuneForm.free:
        why = "only with --form folk (free leaves the form to the model)"
        request.refuse(("bars_per_part", "parts"), why)
        return None
    return PartForm(request.bars_per_part, 2 if request.parts is None else request.parts)


def _write_book(path: Path, book: str) -> None:
    from genseq.fileio import atomic_write_text

    try:
        atomic_write_text(path, book)
    except OSError as exc:
        raise GenseqError(f"{path}: cannot write ({exc.strerror})") from None
