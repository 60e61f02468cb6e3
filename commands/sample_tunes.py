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
    check_book,
    check_folders,
    is_stdout,
    make_folders,
    report_written,
    sample_row,
    wav_soundfont,
)

from genseq.errors import UsageError

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
    soundfont: Path | None  # what the WAV files play; None: sine tones

    @classmethod
    def prepare(cls, ckpt: Checkpoint, request: SampleRequest) -> TuneJob:
        """Refuse what a tune cannot take; build the prompt, which checks header and bars."""
        from genseq.music.tune_sampling import build_prompt

        if is_stdout(request.midi):
            raise UsageError("--midi -: give a folder (only -o writes standard output)")
        if request.stop:
            raise UsageError("--stop is for text models; a tune ends at its end-of-tune token")
        form = _part_form(request)
        check_folders(request.midi, request.wav, request.png, request.svg, request.musicxml)
        check_book(request.output)
        _check_rhythm_meter(request)
        prompt = build_prompt(
            ckpt,
            request.prompt,
            meter=request.meter,
            key=request.key,
            mode=request.mode,
            rhythm=request.rhythm,
        )
        return cls(ckpt, request, prompt, form, wav_soundfont(request, cls.program(request)))

    @staticmethod
    def program(request: SampleRequest) -> int:
        """The General MIDI program the tunes play: --program, else the fiddle."""
        from genseq.music.render import FIDDLE

        return FIDDLE if request.program is None else request.program

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
        written: list[str] = []
        if r.output is not None and not r.to_stdout:
            tunes = self._write_book(tunes, seed)
            written.append(str(r.output))
        files = self._write_files(tunes)
        written += [path for t in tunes for path in files.get(t.index, [])]
        if r.json:
            for t in tunes:
                print_json(self._row(t, seed, files.get(t.index, [])))
        elif r.output is None or r.to_stdout:
            out = stdout()
            out.write("\n".join(t.abc for t in tunes))
            out.flush()
        report_written(r, written)

    def _write_book(self, tunes: list[Tune], seed: int) -> list[Tune]:
        """Append the tunes to -o's book (or replace it with --overwrite), numbered on from
        its highest X:; the tunes as written."""
        from genseq.music.book_file import open_book
        from genseq.music.tune_sampling import numbered

        r = self.request
        with open_book(r.output, overwrite=r.overwrite) as book:
            tunes = numbered(tunes, book.first_x, seed)
            book.write("\n".join(t.abc for t in tunes))
        return tunes

    @property
    def folders(self) -> TuneFolders:
        from genseq.music.tune_files import TuneFolders

        r = self.request
        return TuneFolders(midi=r.midi, wav=r.wav, png=r.png, svg=r.svg, musicxml=r.musicxml)

    def _write_files(self, tunes: list[Tune]) -> dict[int, list[str]]:
        """Note the tunes cut short; write the MIDI, WAV, piano roll, SVG and MusicXML of each
        playable tune where asked (``tune_files``, as `genseq music render` does): each tune's
        files by its index."""
        from genseq.music.tune_files import Sound, TuneSource, write_tunes

        r = self.request
        for t in tunes:
            if t.finish_reason != "eos":
                limit = self.max_new_tokens
                r.note(f"note: tune {t.index + 1} did not end within --max-new-tokens {limit}")
        sources = [
            TuneSource(t.tokens, t.abc, t.title, f"tune {t.index + 1}", t.tempo) for t in tunes
        ]
        sound = Sound(None, self.program(r), self.soundfont)  # each tune plays at its own tempo
        files = write_tunes(sources, self.folders, sound, r.note, overwrite=r.overwrite)
        return {t.index: [str(f) for f in paths] for t, paths in zip(tunes, files, strict=True)}

    def _row(self, t: Tune, seed: int, files: list[str]) -> dict:
        """The shared row, the tune's ABC beside its text, and what conditioned it."""
        r = self.request
        return sample_row(
            r,
            kind="abc",
            index=t.index,
            text=t.abc,
            tokens=len(t.tokens),
            finish_reason=t.finish_reason,
            seed=seed,
            files=files,
            checkpoint=self.ckpt.path,
            abc=t.abc,
            midi=next((f for f in files if f.endswith(".mid")), None),
            rhythm=None if r.rhythm is None else str(r.rhythm),
            meter=r.meter,
            key=r.key,
            mode=r.mode,
            tempo=t.tempo,  # quarter notes a minute: --tempo, else the tune's own, else 120
            constrained=r.constrain,
            form=None if self.form is None or not r.constrain else vars(self.form),
        )


def _check_rhythm_meter(request: SampleRequest) -> None:
    """--rhythm with a --meter that rhythm is never in: one usage error naming its meters
    (the grammar masks the pair; --no-constrain lifts the mask)."""
    from genseq.music.abc_lexer import AbcError, parse_meter
    from genseq.music.header import rhythm_meter_clash

    if not (request.constrain and request.rhythm and request.meter):
        return
    try:
        clash = rhythm_meter_clash(request.rhythm, parse_meter(request.meter))
    except AbcError:
        return  # an unreadable meter is build_prompt's to report
    if clash:
        raise UsageError(
            f"--rhythm {request.rhythm} --meter {request.meter}: {clash} "
            "(--no-constrain samples it anyway)"
        )


def _part_form(request: SampleRequest) -> PartForm | None:
    """The form tunes are sampled with (None: free)."""
    from genseq.music.abc_constraint import PartForm

    if request.form == TuneForm.free:
        why = "only with --form folk (free leaves the form to the model)"
        request.refuse(("bars_per_part", "parts"), why)
        return None
    return PartForm(request.bars_per_part, 2 if request.parts is None else request.parts)
