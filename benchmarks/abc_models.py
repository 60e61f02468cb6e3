"""ABC tune models: the issue's three targets, measured in one run.

1. Tokenizing the embedded default (`folk-abc`, about 4,400 tunes) takes under a minute.
2. Held-out NLL per tune on Nottingham (90/10 split by tune, seed 42) after a CPU training
   budget, against the 4-gram baseline of 368 nats per tune (``../shared/research``).
3. Sampled tunes with and without the grammar constraint: music21 parse rate, readable tunes
   and bar validity (`genseq music stats`' rule; human Nottingham tunes: 94.5% clean in the
   research note's count, 99% by genseq's checker).

Usage: python benchmarks/abc_models.py [--budget 600] [--samples 100] [--shared ../shared]
[--no-record]. It prints a table and, unless --no-record, adds it with the command and machine
at the top of BENCHMARKS.md's entries (benchmarks/_common.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import add_common_args, emit, genseq_exe, require

NOTTINGHAM = Path("corpora") / "nottingham" / "ABC_cleaned"  # under --shared
BASELINE_NATS_PER_TUNE = 368.0


def tokenize_default(tmp: Path) -> tuple[float, object]:
    from genseq.corpus import resolve_sources
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    start = time.perf_counter()
    summary = tokenize_corpus(resolve_sources(["folk-abc"]), tmp / "folk", TokenizeOptions())
    return time.perf_counter() - start, summary


def nottingham_nll(
    tmp: Path, corpus: Path, budget: float, augment: int, train_args: list[str]
) -> dict:
    from genseq.checkpoint import load_checkpoint
    from genseq.corpus import resolve_sources
    from genseq.data import open_data
    from genseq.evaluate import evaluate_tokens
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    data = tmp / "nottingham"
    tokenize_corpus(
        resolve_sources([str(corpus)]),
        data,
        TokenizeOptions(
            level="abc", split="document", val_fraction=0.1, seed=42, augment_keys=augment
        ),
    )
    run = tmp / "run"
    cmd = [genseq_exe(), "train", str(data), "-o", str(run), "--time-budget", str(budget), "-q"]
    cmd += train_args
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    ckpt = load_checkpoint(run)
    val = np.asarray(open_data(data).val)
    tunes = int((val == ckpt.tokenizer.eos_id).sum()) - 1
    result = evaluate_tokens(ckpt.model, val)
    return {
        "run": run,
        "wall": wall,
        "tunes": tunes,
        "nats_per_token": result.loss,
        "nats_per_tune": result.nats / tunes,
        "model": ckpt.config["model"],
    }


def sample_validity(run: Path, n: int, constrain: bool) -> dict:
    import music21

    from genseq.checkpoint import load_checkpoint
    from genseq.music.abc_lexer import AbcError
    from genseq.music.bars import bar_report
    from genseq.music.notes import tune_notes
    from genseq.music.tune_sampling import build_prompt, sample_tunes
    from genseq.sample import SamplingSettings

    ckpt = load_checkpoint(run)
    start = time.perf_counter()
    tunes = sample_tunes(
        ckpt, build_prompt(ckpt), SamplingSettings(), num_samples=n, seed=0, constrain=constrain
    )
    seconds = time.perf_counter() - start
    parsed = readable = clean = ended = 0
    bars = valid_bars = 0
    for t in tunes:
        ended += t.finish_reason == "eos"
        try:
            music21.converter.parse(t.abc, format="abc")
            parsed += 1
        except Exception:  # noqa: BLE001 - any music21 failure counts as unparsable
            pass
        try:
            tune_notes(t.tokens)
            readable += 1
        except AbcError:
            pass
        report = bar_report(t.tokens)
        clean += report.clean
        bars += report.checked
        valid_bars += report.valid
    return {
        "tunes": n,
        "ended": ended / n,
        "parsed": parsed / n,
        "readable": readable / n,
        "clean": clean / n,
        "valid_bars": valid_bars / max(bars, 1),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds")
    parser.add_argument("--samples", type=int, default=100)
    add_common_args(parser)
    parser.add_argument(
        "--augment-keys", type=int, default=0, help="transposed copies of training tunes"
    )
    parser.add_argument("--skip-tokenize", action="store_true")
    parser.add_argument("train_args", nargs="*", help="more `genseq train` flags, after --")
    args = parser.parse_args()
    corpus = require(args.shared / NOTTINGHAM, "the shared Nottingham corpus")
    with tempfile.TemporaryDirectory(prefix="genseq-abc-bench-") as name:
        tmp = Path(name)
        tok_s, tok_summary = (None, None) if args.skip_tokenize else tokenize_default(tmp)
        nll = nottingham_nll(tmp, corpus, args.budget, args.augment_keys, args.train_args)
        on = sample_validity(nll["run"], args.samples, True)
        off = sample_validity(nll["run"], args.samples, False)
    m = nll["model"]
    setup = f", --augment-keys {args.augment_keys}" if args.augment_keys else ""
    setup += f", {' '.join(args.train_args)}" if args.train_args else ""
    lines = []
    if tok_summary is not None:
        lines.append(
            f"| tokenize folk-abc ({tok_summary.documents:,} tunes, {tok_summary.skipped} "
            f"skipped) | {tok_s:.1f} s | under 60 s |"
        )
    lines += [
        f"| Nottingham held-out NLL, {nll['tunes']} tunes, after {args.budget:.0f} s "
        f"({m['num_layers']}x{m['hidden_size']} {m['cell'].upper()}{setup}) | "
        f"{nll['nats_per_tune']:.1f} nats/tune ({nll['nats_per_token']:.3f} nats/token) | "
        f"<= {0.7 * BASELINE_NATS_PER_TUNE:.0f} (4-gram: {BASELINE_NATS_PER_TUNE:.0f}) |",
    ]
    for label, r in (("constrained", on), ("unconstrained", off)):
        lines.append(
            f"| {r['tunes']} samples, {label}: parse in music21 / readable / all bars valid / "
            f"ended | {r['parsed']:.0%} / {r['readable']:.0%} / {r['clean']:.0%} / "
            f"{r['ended']:.0%} ({r['valid_bars']:.1%} of bars valid; {r['seconds']:.0f} s) | "
            f"{'100%' if label == 'constrained' else 'reported'} |"
        )
    table = "\n".join(["| measure | genseq | target |", "| --- | --- | --- |", *lines])
    emit("ABC tune models", table, args)
    print(
        json.dumps(
            {
                "tokenize_s": tok_s,
                "nottingham": {k: v for k, v in nll.items() if k not in ("run", "model")},
            }
        )
    )


if __name__ == "__main__":
    main()
