"""Tokenization speed and memory: `genseq tokenize` at char, word and BPE level on a big corpus.

    python benchmarks/tokenize_speed.py --sizes 50,200 [--levels char,word,bpe] [--no-record]

Builds one text file per size (MB, 1e6 bytes) in a temporary directory by repeating Tiny
Shakespeare + WikiText-2 valid + test from ../shared/corpora, then runs
``genseq tokenize FILE -o DIR --level L --quiet --json`` as a child process for each level and
size. MB/s divide the corpus size by the whole command's wall time (start-up, fitting, both
passes, writing). Peak RSS is the child's own ru_maxrss from ``os.wait4`` (benchmarks/_common),
so a later, smaller run cannot inherit an earlier peak; it must not grow with corpus size. No
anchor runs in the same process; the reference is the target (and the ratio of the largest to
the smallest size's RSS). Targets on 2 cores: char >= 100 MB/s, word and BPE >= 5 MB/s, peak
RSS < 1 GB at any size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import add_common_args, emit, genseq_exe, markdown_table, require, run_timed

TARGET_MB_S = {"char": 100.0, "word": 5.0, "bpe": 5.0}
TARGET_RSS_MB = 1000.0


def build_corpus(shared: Path, path: Path, size_mb: float) -> int:
    """Write at least ``size_mb`` MB of repeated shared corpora to ``path``; returns bytes."""
    corpora = shared / "corpora"
    parts = [
        require(corpora / "tinyshakespeare" / "input.txt"),
        require(corpora / "wikitext-2" / "valid.txt"),
        require(corpora / "wikitext-2" / "test.txt"),
    ]
    block = b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in parts)
    target, written = int(size_mb * 1e6), 0
    with open(path, "wb") as f:
        while written < target:
            left = target - written
            piece = block if left >= len(block) else block[: block.find(b"\n", left) + 1]
            f.write(piece)  # whole lines; the last piece ends just past the target
            written += len(piece)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200", help="corpus sizes in MB (1e6 bytes)")
    parser.add_argument("--levels", default="char,word,bpe")
    parser.add_argument("--tmp", type=Path, help="where to build corpora (default: system temp)")
    add_common_args(parser)
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",") if s]
    levels = [s for s in args.levels.split(",") if s]
    rows, peaks = [], {}
    with tempfile.TemporaryDirectory(prefix="genseq-tok-bench-", dir=args.tmp) as name:
        tmp = Path(name)
        for size in sizes:
            corpus = tmp / f"corpus-{size:g}.txt"
            nbytes = build_corpus(args.shared, corpus, size)
            for level in levels:
                out = tmp / f"tok-{level}-{size:g}"
                cmd = [genseq_exe(), "tokenize", str(corpus), "-o", str(out), "--level", level]
                run = run_timed([*cmd, "--quiet", "--json"])
                s = json.loads(run.stdout.strip().splitlines()[-1])
                mb_s = nbytes / 1e6 / run.wall_s
                peaks.setdefault(level, []).append(run.peak_rss_mb)
                rows.append(
                    [
                        level,
                        f"{nbytes / 1e6:,.1f}",
                        f"{run.wall_s:.1f}",
                        f"**{mb_s:,.1f}**",
                        f"{mb_s / TARGET_MB_S.get(level, 1):.2f}",
                        f"**{run.peak_rss_mb:,.0f}**",
                        f"{s['tokens']:,}",
                        f"{s['vocab_size']:,}",
                    ]
                )
                for p in out.glob("*"):  # free the disk before the next, bigger run
                    p.unlink()
            corpus.unlink()
    headers = ["level", "corpus MB", "wall s", "MB/s", "MB/s / target", "peak RSS MB"]
    table = markdown_table([*headers, "tokens", "vocab"], rows)
    growth = ", ".join(f"{k} {v[-1] / v[0]:.2f}x" for k, v in peaks.items() if len(v) > 1)
    notes = (
        "Targets: char >= 100 MB/s, word and BPE >= 5 MB/s, peak RSS < 1,000 MB at any size. "
        "Corpus: Tiny Shakespeare + WikiText-2 valid + test, repeated; whole `genseq tokenize` "
        "command timed; peak RSS from the child's own rusage."
        + (f" Peak RSS, largest over smallest corpus: {growth}." if growth else "")
    )
    emit("tokenization speed and memory", table, args, notes)


if __name__ == "__main__":
    main()
