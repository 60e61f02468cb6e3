"""Quick figures for the text pipeline, printed as one table (issue 6 grows the full suite).

    python benchmarks/text_pipeline.py [--shared ../shared] [--budget 90] [--no-record]

Measures, in one run on this machine: tokenization throughput for char, word and BPE on Tiny
Shakespeare; `genseq train` with its defaults and a whole-process time budget (validation loss
over the whole validation split, nats per character); and sampling speed of a 2x512 character
LSTM at batch 1 and 64 parallel samples. Reads the corpora from ../shared/corpora and exits
with a message when they are absent. Prints one table and, unless --no-record, adds it with the
command and machine to BENCHMARKS.md. The issue 6 suite (README.md here) measures each of these
against its anchor in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from _common import add_common_args, emit, genseq_exe, markdown_table, require


def bench_tokenize(corpus: Path, work: Path) -> list[tuple[str, str]]:
    from genseq.corpus import resolve_sources
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    rows = []
    size_mb = corpus.stat().st_size / 1e6
    for level in ("char", "word", "bpe"):
        t0 = time.perf_counter()
        summary = tokenize_corpus(
            resolve_sources([str(corpus)]), work / f"tok-{level}", TokenizeOptions(level=level)
        )
        dt = time.perf_counter() - t0
        rows.append(
            (
                f"tokenize {level} (incl. fitting)",
                f"{size_mb / dt:.1f} MB/s, {summary.tokens:,} tokens, vocab {summary.vocab_size:,}",
            )
        )
    return rows


def bench_train(corpus: Path, work: Path, budget: int) -> list[tuple[str, str]]:
    genseq = genseq_exe()
    data = work / "tok-char"
    run = work / f"run-{budget}"
    t0 = time.perf_counter()
    out = subprocess.run(
        [
            genseq,
            "train",
            str(data),
            "-o",
            str(run),
            "--time-budget",
            str(budget),
            "--json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    s = json.loads(out.stdout)
    tok_s = s["tokens_seen"] / s["elapsed_s"]
    return [
        (
            f"train defaults, --time-budget {budget}",
            f"val {s['val_loss']:.4f} nats/char, {s['step']:,} steps, {tok_s:,.0f} tok/s "
            f"(incl. evals), {wall:.1f} s wall, {s['parameters']:,} params",
        )
    ]


def bench_sampling() -> list[tuple[str, str]]:
    import torch

    from genseq.checkpoint import Checkpoint
    from genseq.generate import generate
    from genseq.model import ModelConfig, RecurrentLM
    from genseq.tokenization import new_tokenizer

    tok = new_tokenizer("char")
    tok.fit(iter(["".join(chr(c) for c in range(32, 97))]))
    model = RecurrentLM(
        ModelConfig(vocab_size=tok.vocab_size, num_layers=2, hidden_size=512, embed_size=64)
    ).eval()
    ckpt = Checkpoint(Path("."), {}, model, tok)
    rows = []
    for batch, n in ((1, 2000), (64, 500)):
        torch.manual_seed(0)
        generate(ckpt, "", max_new_tokens=50, num_samples=batch, seed=0, stop_at_eos=False)
        t0 = time.perf_counter()
        samples = generate(ckpt, "", max_new_tokens=n, num_samples=batch, seed=0, stop_at_eos=False)
        dt = time.perf_counter() - t0
        chars = sum(len(s.text) for s in samples)
        rows.append((f"sample 2x512 char LSTM, batch {batch}", f"{chars / dt:,.0f} chars/s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=90)
    add_common_args(parser)
    args = parser.parse_args()
    corpus = require(args.shared / "corpora" / "tinyshakespeare" / "input.txt")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = bench_tokenize(corpus, work)
        rows += bench_train(corpus, work, args.budget)
    rows += bench_sampling()
    emit("text pipeline, quick figures", markdown_table(["measure", "value"], rows), args)


if __name__ == "__main__":
    main()
