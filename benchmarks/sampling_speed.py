"""Sampling speed of a 2x512 character LSTM: genseq's generate() against a plain PyTorch loop.

    python benchmarks/sampling_speed.py [--chars 2000 --lengths 1000,10000,100000] [--no-record]

The model is genseq's ``RecurrentLM`` (LSTM 2x512, embedding 128) with random weights (speed
does not depend on them) and a character tokenizer fitted on Tiny Shakespeare. genseq is timed
through ``genseq.generate.generate`` on a ``Checkpoint`` object, the path ``genseq sample``
takes (sampling, incremental detokenizing, returned text), with ``stop_at_eos=False`` so every
sample has its full length, at batch 1 and 64 samples in parallel (aggregate characters/s).
The anchor is the loop of ../shared/anchors.md: one ``nn.LSTM`` call per character on a
(1, 1) input with the state carried, softmax, ``torch.multinomial``, ``.item()``, same shape
(and at 64 samples, ``.tolist()``). Each system runs once untimed to warm up.
Then length scaling at batch 1 (``--lengths``): seconds per character, which must stay
constant, and growth of peak RSS, which must stay flat. Peak RSS is the kernel's VmHWM from
/proc/self/status, reset to the current RSS before each length by writing 5 to
/proc/self/clear_refs, so each row shows the new high-water mark minus the RSS at its start.
(Returned text and ids grow with length by design: about 0.1 MB per 10k characters.)
Targets: >= 2,500 chars/s at batch 1, >= 12,000 aggregate at 64.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import add_common_args, emit, markdown_table, require

TARGET_BATCH1, TARGET_BATCH64 = 2_500, 12_000


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def genseq_checkpoint(text: str, args: argparse.Namespace):
    from genseq.checkpoint import Checkpoint
    from genseq.model import ModelConfig, RecurrentLM
    from genseq.tokenization import new_tokenizer

    tok = new_tokenizer("char")
    tok.fit(iter([text]))
    config = ModelConfig(
        vocab_size=tok.vocab_size,
        num_layers=args.layers,
        hidden_size=args.hidden,
        embed_size=args.embed,
    )
    return Checkpoint(Path("."), {}, RecurrentLM(config).eval(), tok)


def genseq_rate(ckpt, chars: int, batch: int) -> float:
    from genseq.generate import generate

    start = time.perf_counter()
    samples = generate(ckpt, "", max_new_tokens=chars, num_samples=batch, seed=0, stop_at_eos=False)
    seconds = time.perf_counter() - start
    return sum(len(s.text) for s in samples) / seconds


def anchor_sampler(text: str, args: argparse.Namespace):
    import torch
    from plain_lstm import LSTMConfig, make_model

    chars = sorted(set(text))
    model = make_model(len(chars), LSTMConfig(embed=args.embed, hidden=args.hidden)).eval()

    @torch.no_grad()
    def sample(n: int, batch: int) -> float:
        start = time.perf_counter()
        x, state = torch.zeros(batch, 1, dtype=torch.long), None
        out: list[list[str]] = [[] for _ in range(batch)]
        for _ in range(n):
            logits, state = model(x, state)  # (B, 1, V)
            probs = torch.softmax(logits[:, -1], dim=-1)
            x = torch.multinomial(probs, 1)  # (B, 1)
            if batch == 1:
                out[0].append(chars[x.item()])
            else:
                for b, i in enumerate(x[:, 0].tolist()):
                    out[b].append(chars[i])
        seconds = time.perf_counter() - start
        return sum(len("".join(o)) for o in out) / seconds

    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=2000, help="characters per sample, batch 1")
    parser.add_argument("--chars-64", type=int, default=500, help="per sample at batch 64")
    parser.add_argument("--batch", type=int, default=64, help="parallel samples")
    parser.add_argument("--lengths", default="1000,10000,100000", help="length scaling, batch 1")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--embed", type=int, default=128)
    add_common_args(parser)
    args = parser.parse_args()
    if args.layers != 2:
        parser.error("the anchor loop is 2-layer (plain_lstm.LSTMConfig); keep --layers 2")
    corpus = require(args.shared / "corpora" / "tinyshakespeare" / "input.txt")
    text = corpus.read_text(encoding="utf-8")
    ckpt = genseq_checkpoint(text, args)
    anchor = anchor_sampler(text, args)
    shape = f"{args.layers}x{args.hidden}"
    rows = []
    for batch, n in ((1, args.chars), (args.batch, args.chars_64)):
        genseq_rate(ckpt, min(n, 100), batch)  # warm up
        anchor(min(n, 100), batch)
        g, a = genseq_rate(ckpt, n, batch), anchor(n, batch)
        goal = {1: f">= {TARGET_BATCH1:,}", 64: f">= {TARGET_BATCH64:,}"}.get(batch, "")
        rows.append(
            [f"genseq generate(), {shape}", batch, f"{n:,}", f"**{g:,.0f}**"]
            + [f"{1e6 / g:.0f}", "", f"{g / a:.2f}", goal]
        )
        rows.append([f"plain LSTM loop, {shape}", batch, f"{n:,}", f"{a:,.0f}"])
        rows[-1] += [f"{1e6 / a:.0f}", "", "1", ""]
    can_reset, first = True, None
    for n in (int(x) for x in args.lengths.split(",") if x):
        can_reset = reset_peak() and can_reset
        rss0 = status_mb("VmRSS")
        g = genseq_rate(ckpt, n, 1)
        growth = status_mb("VmHWM") - rss0
        first = first or g
        rows.append(
            [f"genseq generate(), {shape}, length scaling", 1, f"{n:,}", f"{g:,.0f}"]
            + [f"{1e6 / g:.0f}", f"{growth:.1f}", f"{first / g:.2f}", "flat"]
        )
    headers = ["system", "samples", "chars each", "chars/s (aggregate)", "us/char"]
    headers += ["peak RSS growth (MB)", "ratio", "target"]
    table = markdown_table(headers, rows)
    notes = (
        "Ratio: genseq over the plain loop at the same batch; for length scaling, time per "
        "character over the first length's (1.00 = linear). Peak RSS growth: VmHWM after the "
        "run minus VmRSS before it, VmHWM reset through /proc/self/clear_refs"
        + ("" if can_reset else " (reset refused: growth is an upper bound)")
        + "."
    )
    emit("sampling speed (2x512 char LSTM)", table, args, notes)


if __name__ == "__main__":
    main()
