"""`genseq sample` for text checkpoints: samples on stdout, one streamed as it is drawn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from genseq.commands._common import print_json, stdout

from genseq.errors import UsageError

if TYPE_CHECKING:
    from genseq.commands.sample_request import SampleRequest

    from genseq.checkpoint import Checkpoint
    from genseq.generate import Sample

# SampleRequest fields, in the order a refusal names them
TUNE_OPTIONS = (
    "rhythm",
    "meter",
    "key",
    "mode",
    "midi",
    "wav",
    "soundfont",
    "png",
    "bars_per_part",
    "parts",
    "program",
    "tempo",
)


@dataclass(frozen=True)
class TextJob:
    ckpt: Checkpoint
    request: SampleRequest

    @classmethod
    def prepare(cls, ckpt: Checkpoint, request: SampleRequest) -> TextJob:
        """Refuse the tune options; name the prompt's pieces that the model never saw."""
        from genseq.generate import encode_prompt

        request.refuse(TUNE_OPTIONS, f"only for ABC models ({ckpt.level} level here)")
        if request.output is not None and not request.to_stdout:
            raise UsageError(
                f"-o {request.output}: a text model writes standard output only "
                "(-o -, or redirect it with > FILE)"
            )
        unknown = encode_prompt(ckpt.tokenizer, request.prompt).unknown
        if unknown:
            request.note(
                "note: the prompt has pieces the model never saw, read as <unk>: "
                + ", ".join(map(repr, unknown))
            )
        return cls(ckpt, request)

    def run(self, seed: int) -> None:
        """A single sample streams as it is drawn; several, or JSON, come when all are done."""
        from genseq.generate import MAX_NEW_TOKENS, generate

        r = self.request
        out = stdout()
        stream = r.num_samples == 1 and not r.json
        if stream and r.echo and r.prompt:
            out.write(r.prompt)
            out.flush()
        samples = generate(
            self.ckpt,
            r.prompt,
            r.settings,
            max_new_tokens=r.max_new_tokens or MAX_NEW_TOKENS,
            num_samples=r.num_samples,
            stop=r.stop,
            seed=seed,
            on_text=_writer(out) if stream else None,
        )
        for s in samples:
            if r.json:
                print_json(self._row(s, seed))
            else:
                self._finish(out, s, streamed=stream)
        out.flush()

    def _finish(self, out: TextIO, s: Sample, streamed: bool) -> None:
        """The sample (unless it was streamed), ended by a newline; a blank line between two."""
        full = (self.request.prompt if self.request.echo else "") + s.text
        if not streamed:
            out.write(full)
        if not full.endswith("\n"):
            out.write("\n")
        if s.index < self.request.num_samples - 1:
            out.write("\n")

    def _row(self, s: Sample, seed: int) -> dict:
        from genseq.commands.sample_request import sample_row

        return sample_row(
            self.request,
            kind="text",
            index=s.index,
            text=s.text,
            tokens=s.tokens,
            finish_reason=s.finish_reason,
            seed=seed,
            files=[],
            checkpoint=self.ckpt.path,
        )


def _writer(out: TextIO) -> Callable[[int, str], None]:
    def on_text(_index: int, piece: str) -> None:
        out.write(piece)
        out.flush()

    return on_text
