"""Sampled tunes judged by the reference ABC programs musicians use: abc2midi and abcm2ps.

genseq's own checker agreeing with genseq's own sampler proves little, so every sampled tune
is written as a tunebook entry and handed to ``abc2midi`` (ABC to MIDI; Debian package
abcmidi) and ``abcm2ps`` (the typesetter). A tune fails when either prints an error or a
warning, except abcm2ps's notes on how full a staff line is (``Line underfull``/``overfull``:
page layout, not the tune), which are counted apart. Settings spread over temperatures,
top-k 1 and 5, top-p, min-p, every meter and rhythm the checkpoint knows, modal keys and ABC
prompts.

Then the form and the music of ``--default-tunes`` tunes at default settings (three seeds),
with the folk
form (``genseq sample``'s default) and without it, beside the reference corpus (``folk-abc``):
parts of 8 or 16 bars, tonic endings, and the overlap of pitch-class, interval and note-length
histograms with the reference's (``genseq music stats``' figures).

Usage: python benchmarks/abc_reference_tools.py [--checkpoint checkpoints/folk-tunes]
[--tunes 300] [--default-tunes 100] [--form folk|free] [--no-constrain] [--save DIR]
[--no-record] (``--default-tunes 0`` leaves the second table out). It prints
the tables and the most common messages and, unless --no-record, adds them with the command
and machine to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _common import REPO, add_common_args, emit, markdown_table

LAYOUT = re.compile(r"Line (underfull|overfull)")
FLAGGED = re.compile(r"rror|arning")
KEYS = ("D", "G", "Ador", "Edor", "Bm", "F")
PROMPTS = (("6/8", "D", "A|dfa afd|"), ("4/4", "G", "GABc dBGB|"))


@dataclass
class Setting:
    name: str
    sampling: dict
    meter: str | None = None
    key: str | None = None
    prompt: str = ""
    rhythm: str | None = None


@dataclass
class Tally:
    tunes: int = 0
    abc2midi: int = 0  # tunes with an error or warning from abc2midi
    abcm2ps: int = 0  # ... from abcm2ps, layout notes aside
    layout: int = 0  # tunes with only layout notes
    messages: Counter = field(default_factory=Counter)


def settings_for(meters: list[str], rhythms: list[str]) -> list[Setting]:
    plain = [
        Setting("defaults", {}),
        Setting("temperature 0.5", {"temperature": 0.5}),
        Setting("temperature 0.8", {"temperature": 0.8}),
        Setting("temperature 1.3", {"temperature": 1.3}),
        Setting("top-k 1", {"top_k": 1}, "6/8", "D"),
        Setting("top-k 5", {"top_k": 5}, "9/8", "G"),
        Setting("top-p 0.5", {"top_p": 0.5}, "3/4", "Ador"),
        Setting("top-p 0.9", {"top_p": 0.9}, "2/4", "Edor"),
        Setting("min-p 0.1", {"min_p": 0.1}, "4/4", "Bm"),
    ]
    by_meter = [Setting(f"M:{m}", {}, m, KEYS[i % len(KEYS)]) for i, m in enumerate(meters)]
    prompts = [Setting(f"prompt {p}", {}, m, k, p) for m, k, p in PROMPTS]
    by_rhythm = [Setting(f"R:{r}", {}, rhythm=r) for r in rhythms]
    return plain + by_meter + prompts + by_rhythm


def tool_messages(abc: Path, work: Path) -> tuple[list[str], list[str], bool]:
    """abc2midi's and abcm2ps's flagged lines for one tune, and whether layout was noted."""
    midi = subprocess.run(
        ["abc2midi", str(abc), "-o", str(work / "t.mid")], capture_output=True, text=True
    )
    score = subprocess.run(
        ["abcm2ps", str(abc), "-O", str(work / "t.ps")], capture_output=True, text=True
    )
    a = [x for x in (midi.stdout + midi.stderr).splitlines() if FLAGGED.search(x)]
    b = [x for x in (score.stdout + score.stderr).splitlines() if FLAGGED.search(x)]
    layout = any(LAYOUT.search(x) for x in b)
    return a, [x for x in b if not LAYOUT.search(x)], layout


def normalise(message: str) -> str:
    text = message.split(" : ", 1)[-1]
    text = re.sub(r"^.*?:\d+:\d+: ", "", text)
    return re.sub(r"\d+", "N", text).strip()


def judge(tunes, tally: Tally, work: Path, save: Path | None, name: str) -> None:
    for tune in tunes:
        path = work / f"{re.sub(r'[^A-Za-z0-9]+', '_', name)}_{tune.index + 1:03d}.abc"
        path.write_text(tune.abc, "utf-8")
        a, b, layout = tool_messages(path, work)
        tally.tunes += 1
        tally.abc2midi += bool(a)
        tally.abcm2ps += bool(b)
        tally.layout += layout and not (a or b)
        for line in a + b:
            tally.messages[normalise(line)] += 1
        if save is not None and (a or b):
            shutil.copy(path, save / path.name)
            (save / (path.stem + ".txt")).write_text("\n".join(a + b) + "\n", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "folk-tunes")
    parser.add_argument("--tunes", type=int, default=300, help="tunes in all (spread evenly)")
    parser.add_argument("--save", type=Path, help="keep flagged tunes and messages here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--default-tunes", type=int, default=100)
    parser.add_argument("--form", choices=("folk", "free"), default="folk")
    parser.add_argument(
        "--no-constrain", action="store_true", help="sample without the grammar, to compare"
    )
    add_common_args(parser, shared=False)
    args = parser.parse_args()
    if not all(map(shutil.which, ("abc2midi", "abcm2ps"))):
        sys.exit("abc2midi and abcm2ps are needed: apt-get install abcmidi abcm2ps")

    from genseq.checkpoint import load_checkpoint
    from genseq.errors import UsageError
    from genseq.music.abc_constraint import PartForm
    from genseq.music.abc_vocab import info
    from genseq.music.tune_sampling import build_prompt, sample_tunes
    from genseq.sample import SamplingSettings

    ckpt = load_checkpoint(args.checkpoint)
    meters = sorted({t[2:] for t in ckpt.tokenizer.ids if info(t).kind == "meter"})
    rhythms = sorted({info(t).rhythm for t in ckpt.tokenizer.ids if info(t).kind == "rhythm"})
    settings = settings_for(meters, rhythms)
    per = max(1, -(-args.tunes // len(settings)))
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    rows, total, start = [], Tally(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k, s in enumerate(settings):
            try:
                prompt = build_prompt(ckpt, s.prompt, meter=s.meter, key=s.key, rhythm=s.rhythm)
            except UsageError as exc:
                print(f"{s.name}: skipped ({exc})", file=sys.stderr)
                continue
            tally = Tally()
            sampling = SamplingSettings(**s.sampling)
            form = PartForm() if args.form == "folk" else None
            tunes = sample_tunes(
                ckpt,
                prompt,
                sampling,
                num_samples=per,
                seed=args.seed + k,
                constrain=not args.no_constrain,
                form=form,
            )
            judge(tunes, tally, Path(tmp), args.save, s.name)
            rows.append((s.name, tally.tunes, tally.abc2midi, tally.abcm2ps, tally.layout))
            for name in ("tunes", "abc2midi", "abcm2ps", "layout"):
                setattr(total, name, getattr(total, name) + getattr(tally, name))
            total.messages.update(tally.messages)
    rows.append(("**all**", total.tunes, total.abc2midi, total.abcm2ps, total.layout))
    headers = ("setting", "tunes", "abc2midi flagged", "abcm2ps flagged", "layout notes only")
    top = "\n".join(f"- {n} x {m}" for m, n in total.messages.most_common(10)) or "- none"
    how = "no grammar" if args.no_constrain else f"--form {args.form}"
    notes = (
        f"Checkpoint `{args.checkpoint.name}`, {how}; {total.tunes} tunes in "
        f"{time.perf_counter() - start:.0f} s. {_versions()}\n\nMost common messages:\n{top}"
    )
    emit("ABC tunes judged by abc2midi and abcm2ps", markdown_table(headers, rows), args, notes)
    if args.default_tunes > 0:
        table = form_table(ckpt, args)
        emit("Form and music of default tunes, folk form and free", table, args)


def form_table(ckpt, args: argparse.Namespace) -> str:
    """Form shares and histogram overlaps of default tunes (folk, free) and the reference,
    averaged over three seeds: one hundred tunes' overlaps move by 0.02-0.05 from seed to
    seed, more than folk and free differ."""
    from genseq.corpus import resolve_sources
    from genseq.music.abc_constraint import PartForm
    from genseq.music.stats import compute_stats, split_sources
    from genseq.music.tune_sampling import build_prompt, sample_tunes
    from genseq.sample import SamplingSettings

    docs = resolve_sources(["folk-abc"]).documents
    reference = split_sources((d.name, d.path.read_text("utf-8", "replace")) for d in docs)
    rows = []
    for name, form in (("folk form", PartForm()), ("free", None)):
        runs = []
        for seed in range(args.seed, args.seed + 3):
            tunes = sample_tunes(
                ckpt,
                build_prompt(ckpt),
                SamplingSettings(),
                num_samples=args.default_tunes,
                seed=seed,
                form=form,
            )
            text = "\n".join(t.abc for t in tunes)
            runs.append(compute_stats(split_sources([("samples", text)]), reference, parse_limit=0))
        rows.append(_form_row(f"{name} ({len(runs)} x {args.default_tunes})", runs))
    ref_form = runs[-1].reference["form"]
    shares = (f"{ref_form['parts_8_or_16_bars']:.1%}", f"{ref_form['tonic_endings']:.1%}")
    rows.append((f"reference folk-abc ({ref_form['tunes']})", *shares, "-", "-", "-"))
    headers = ("tunes", "parts of 8/16 bars", "tonic endings", "pitch-class overlap")
    return markdown_table((*headers, "interval overlap", "note-length overlap"), rows)


def _form_row(name: str, runs: list) -> tuple:
    """Mean over runs, with the range of the overlaps."""

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    cells = [name]
    for key in ("parts_8_or_16_bars", "tonic_endings"):
        cells.append(f"{mean([r.form[key] for r in runs]):.1%}")
    for key in ("pitch_class", "interval", "note_length"):
        values = [r.reference["distances"][key]["overlap"] for r in runs]
        cells.append(f"{mean(values):.3f} ({min(values):.3f}-{max(values):.3f})")
    return tuple(cells)


def _versions() -> str:
    midi = subprocess.run(["abc2midi", "-ver"], capture_output=True, text=True).stdout.strip()
    ps = subprocess.run(["abcm2ps", "-V"], capture_output=True, text=True)
    ps_line = (ps.stdout or ps.stderr).splitlines()[0] if (ps.stdout or ps.stderr) else "?"
    return f"abc2midi {midi or '?'}, {ps_line}."


if __name__ == "__main__":
    main()
