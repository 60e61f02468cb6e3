"""MIDI note models: the issue's three targets, measured in one run.

1. Reading the 1,034 Nottingham MIDI melodies into token ids (`genseq tokenize`'s whole
   path: read, choose the melody, quantise, encode, write) takes under 10 s on 2 cores; the
   performance encoding is timed too.
2. Held-out NLL of a melody model trained with ``--time-budget`` (default 600 s) against a
   token 4-gram on the same encoding and the same split (10 % of the files, drawn with seed
   42), per event and per note (events / NOTE_ON events). The 4-gram is interpolated
   absolute discounting (Ney et al. 1994; discount 0.75 at every order, the unigram
   interpolated with the uniform distribution), counted on the training stream with
   ``<eos>`` between files, as the model sees it.
3. Sampled melodies: every file loads in pretty_midi and mido, no note is left hanging (each
   note-on has its note-off) and every pitch lies within the corpus's range.

Usage: python benchmarks/midi_models.py [--budget 600] [--samples 20] [--no-record]
       [-- more `genseq train` flags]
It prints a table and, unless --no-record, records it with the command and machine at the top
of BENCHMARKS.md's entries (benchmarks/_common.py).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from _common import add_common_args, emit, require

NOTTINGHAM_MIDI = Path("corpora") / "nottingham" / "MIDI" / "melody"  # under --shared
DISCOUNT = 0.75
ORDER = 4


def tokenize(corpus: Path, out: Path, level: str) -> tuple[float, object]:
    from genseq.corpus import resolve_sources
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    start = time.perf_counter()
    options = TokenizeOptions(level=level, split="document", val_fraction=0.1, seed=42)
    summary = tokenize_corpus(resolve_sources([str(corpus)]), out, options)
    return time.perf_counter() - start, summary


class NGram:
    """Interpolated absolute discounting over token ids (orders 1..``order``)."""

    def __init__(self, train: np.ndarray, vocab: int, order: int = ORDER, d: float = DISCOUNT):
        self.order, self.d, self.vocab = order, d, vocab
        seq = [int(t) for t in train]
        self.counts: list[Counter] = [Counter() for _ in range(order + 1)]  # by n: (h, w)
        self.context: list[Counter] = [Counter() for _ in range(order + 1)]  # c(h)
        self.types: list[Counter] = [Counter() for _ in range(order + 1)]  # N1+(h .)
        for n in range(1, order + 1):
            grams = Counter(tuple(seq[i - n + 1 : i + 1]) for i in range(n - 1, len(seq)))
            self.counts[n] = grams
            for gram, c in grams.items():
                self.context[n][gram[:-1]] += c
                self.types[n][gram[:-1]] += 1

    def prob(self, history: tuple[int, ...], w: int) -> float:
        p = 1.0 / self.vocab
        for n in range(1, self.order + 1):
            h = history[len(history) - (n - 1) :] if n > 1 else ()
            if n > 1 and len(history) < n - 1:
                break
            total = self.context[n].get(h, 0)
            if total == 0:
                break
            c = self.counts[n].get((*h, w), 0)
            p = max(c - self.d, 0.0) / total + self.d * self.types[n][h] / total * p
        return p

    def nats(self, tokens: np.ndarray) -> float:
        seq = [int(t) for t in tokens]
        return -sum(
            math.log(self.prob(tuple(seq[max(0, i - self.order + 1) : i]), seq[i]))
            for i in range(1, len(seq))
        )


def train_model(data: Path, run: Path, budget: float, train_args: list[str]) -> float:
    genseq = str(Path(sys.executable).with_name("genseq"))
    cmd = [genseq, "train", str(data), "-o", str(run), "--time-budget", str(budget), "-q"]
    start = time.perf_counter()
    subprocess.run([*cmd, *train_args], check=True)
    return time.perf_counter() - start


def model_nll(run: Path, val: np.ndarray) -> tuple[float, dict]:
    from genseq.checkpoint import load_checkpoint
    from genseq.evaluate import evaluate_tokens

    ckpt = load_checkpoint(run)
    return evaluate_tokens(ckpt.model, val).nats, ckpt.config["model"]


def corpus_range(data) -> tuple[int, int]:
    """The lowest and highest melody pitch of all the files (checked against the tokens)."""
    tok = data.tokenizer()
    used = np.unique(np.concatenate([np.asarray(data.train), np.asarray(data.val)]))
    pitches = [int(t[8:]) for t in tok.tokens_of(used) if t.startswith("NOTE_ON_")]
    assert (min(pitches), max(pitches)) == tok.pitch_range
    return min(pitches), max(pitches)


def check_samples(run: Path, n: int, low: int, high: int, out: Path) -> dict:
    """Sample through the CLI, then load every file in pretty_midi and mido."""
    import mido
    import pretty_midi

    genseq = str(Path(sys.executable).with_name("genseq"))
    cmd = [genseq, "sample", str(run), "--num-samples", str(n), "--seed", "0", "-o", str(out)]
    start = time.perf_counter()
    subprocess.run([*cmd, "--num-steps", "128", "-q"], check=True)
    seconds = time.perf_counter() - start
    loaded = closed = in_range = notes = 0
    for path in sorted(out.glob("*.mid")):
        try:
            pm = pretty_midi.PrettyMIDI(str(path))
            mid = mido.MidiFile(str(path))
        except Exception:  # noqa: BLE001 - any failure to load counts
            continue
        loaded += 1
        pitches = [note.pitch for inst in pm.instruments for note in inst.notes]
        notes += len(pitches)
        in_range += all(low <= p <= high for p in pitches)
        sounding: defaultdict[tuple[int, int], int] = defaultdict(int)
        ok = True
        for msg in mido.merge_tracks(mid.tracks):
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[(msg.channel, msg.note)] += 1
            elif msg.type in ("note_on", "note_off"):
                ok &= sounding[(msg.channel, msg.note)] > 0
                sounding[(msg.channel, msg.note)] -= 1
        closed += ok and not any(sounding.values())
    return {
        "samples": n,
        "loaded": loaded,
        "closed": closed,
        "in_range": in_range,
        "notes": notes,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds")
    parser.add_argument("--samples", type=int, default=20)
    add_common_args(parser)
    parser.add_argument("train_args", nargs="*", help="more `genseq train` flags, after --")
    args = parser.parse_args()
    corpus = require(args.shared / NOTTINGHAM_MIDI, "the shared Nottingham MIDI files")
    from genseq.data import open_data

    with tempfile.TemporaryDirectory(prefix="genseq-midi-bench-") as name:
        tmp = Path(name)
        melody_s, melody = tokenize(corpus, tmp / "melody", "midi-melody")
        perf_s, perf = tokenize(corpus, tmp / "performance", "midi-performance")
        data = open_data(tmp / "melody")
        train, val = np.asarray(data.train), np.asarray(data.val)
        tok = data.tokenizer()
        val_notes = tok.note_count(val)
        start = time.perf_counter()
        ngram = NGram(train, tok.vocab_size)
        ngram_nats = ngram.nats(val)
        ngram_s = time.perf_counter() - start
        wall = train_model(tmp / "melody", tmp / "run", args.budget, args.train_args)
        model_nats, m = model_nll(tmp / "run", val)
        low, high = corpus_range(data)
        samples = check_samples(tmp / "run", args.samples, low, high, tmp / "samples")
    events = len(val) - 1
    setup = f", {' '.join(args.train_args)}" if args.train_args else ""
    lines = [
        f"| read {melody.documents:,} Nottingham MIDI files into midi-melody ids "
        f"({melody.skipped} skipped, {melody.tokens:,} events) | {melody_s:.1f} s | under 10 s |",
        f"| the same into midi-performance ids ({perf.skipped} skipped, {perf.tokens:,} events) "
        f"| {perf_s:.1f} s | - |",
        f"| held-out 4-gram (absolute discounting {DISCOUNT}), {val_notes:,} notes in "
        f"{events:,} events | {ngram_nats / val_notes:.3f} nats/note "
        f"({ngram_nats / events:.4f} nats/event; {ngram_s:.0f} s) | baseline |",
        f"| held-out melody model after {args.budget:.0f} s ({m['num_layers']}x"
        f"{m['hidden_size']} {m['cell'].upper()}{setup}; {wall:.0f} s wall) | "
        f"{model_nats / val_notes:.3f} nats/note ({model_nats / events:.4f} nats/event) | "
        f"below the 4-gram |",
        f"| {samples['samples']} samples of 128 steps: load in pretty_midi and mido / no "
        f"hanging note / pitches in the corpus range {low}-{high} | {samples['loaded']} / "
        f"{samples['closed']} / {samples['in_range']} ({samples['notes']:,} notes; "
        f"{samples['seconds']:.0f} s) | all |",
    ]
    table = "\n".join(["| measure | genseq | target |", "| --- | --- | --- |", *lines])
    emit("MIDI note models", table, args)
    print(
        json.dumps(
            {
                "tokenize_melody_s": melody_s,
                "tokenize_performance_s": perf_s,
                "val_events": events,
                "val_notes": val_notes,
                "ngram_nats_per_note": ngram_nats / val_notes,
                "model_nats_per_note": model_nats / val_notes,
                "samples": samples,
            }
        )
    )


if __name__ == "__main__":
    main()
