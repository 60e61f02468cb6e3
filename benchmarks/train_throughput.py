"""Training throughput: tokens/s and achieved GFLOP/s as a share of the fp32 matmul ceiling.

    python benchmarks/train_throughput.py [--seconds 10 --rounds 3] [--no-record]

Measured in one process: first the machine's fp32 matmul ceiling (``torch.mm`` of n x n,
n = 1024, 1536, 2048, best of ``--repeats``, 2 n^3 FLOP each); then training steps for the 2x512
reference shape (embedding 128, batch 32, sequence 128, vocabulary 65) of (a) genseq's
``RecurrentLM`` with genseq's optimizer (``genseq.training.build.make_optimizer`` on a
``TrainConfig`` resolved by ``genseq.plan.plan``) and its loop body (state carried and detached,
loss, backward, norm clipping, step; no data loading, evaluation or logging), and (b) the plain
LSTM of benchmarks/plain_lstm.py. The two alternate for ``--rounds`` rounds of ``--seconds``
each and the median round counts, so drift hits both alike. Achieved FLOP/s use the usual
6 x weights-touched-per-token estimate (``genseq.plan.model_flops_per_token``: embedding
lookups are free, every LSTM and output matrix is read once forward and twice backward);
the same count serves both models. genseq's dropout defaults to 0 here to match the anchor's
shape (``--dropout 0.1`` measures genseq's own default for Tiny Shakespeare). Target: 75%.

``--bf16`` adds a third system, genseq's step under bf16 autocast (``--precision bf16``, the
character level's default on a CPU with AVX512-BF16), and the bf16 ``torch.mm`` ceiling; its
share is of that ceiling, and its ratio, like the others, is over the plain LSTM.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import add_common_args, emit, markdown_table

TARGET_SHARE = 0.75


def matmul_ceiling(repeats: int, dtype_name: str = "float32") -> tuple[float, int]:
    """Best ``torch.mm`` GFLOP/s over n = 1024..2048 in this dtype, and the n that reached it."""
    import torch

    dtype = getattr(torch, dtype_name)
    best, best_n = 0.0, 0
    for n in (1024, 1536, 2048):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        out = torch.empty(n, n, dtype=dtype)
        torch.mm(a, b, out=out)  # warm up
        for _ in range(repeats):
            t = time.perf_counter()
            torch.mm(a, b, out=out)
            rate = 2 * n**3 / (time.perf_counter() - t) / 1e9
            if rate > best:
                best, best_n = rate, n
    return best, best_n


def genseq_step(args: argparse.Namespace, precision: str = "fp32"):
    import torch
    from torch import nn

    from genseq.model import RecurrentLM, detach_state
    from genseq.plan import TrainConfig, model_flops_per_token, plan
    from genseq.training.build import make_optimizer, model_config

    given = TrainConfig(
        num_layers=args.layers,
        hidden_size=args.hidden,
        embed_size=args.embed,
        dropout=args.dropout,
        seq_len=args.seq,
        batch_size=args.batch,
        time_budget=90.0,
        precision=precision,
    )
    cfg = plan(given, 1_003_854, args.vocab, "char", torch.device("cpu"))
    model = RecurrentLM(model_config(cfg, args.vocab)).train()
    optimizer = make_optimizer(model, cfg)
    state = model.init_state(cfg.batch_size)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        nonlocal state
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits, state = model(x, state)  # (B, T, V)
            loss = model.loss(logits, y)
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss).item():  # the trainer checks every step too
            raise RuntimeError("non-finite loss")
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        optimizer.step()
        state = detach_state(state, torch.float32)

    flops = model_flops_per_token(cfg, args.vocab)
    label = f"genseq RecurrentLM {cfg.num_layers}x{cfg.hidden_size}, {cfg.optimizer}"
    label += f" lr {cfg.lr:g}, dropout {cfg.dropout:g}"
    return label + (", bf16 autocast" if precision == "bf16" else ""), step, flops


def anchor_step(args: argparse.Namespace):
    from plain_lstm import LSTMConfig, make_model, make_step

    cfg = LSTMConfig(
        embed=args.embed, hidden=args.hidden, layers=args.layers, seq=args.seq, batch=args.batch
    )
    step = make_step(make_model(args.vocab, cfg), cfg)
    return f"plain LSTM {cfg.layers}x{cfg.hidden}, adam lr {cfg.lr:g}", step


def rate(step, args: argparse.Namespace, seconds: float) -> float:
    """Training tokens per second of ``step`` over about ``seconds``."""
    import torch

    x = torch.randint(args.vocab, (args.batch, args.seq))
    y = torch.randint(args.vocab, (args.batch, args.seq))
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or steps < 2:
        step(x, y)
        steps += 1
    return steps * args.batch * args.seq / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per system and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="matmuls per size")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--embed", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=65)
    parser.add_argument("--dropout", type=float, default=0.0, help="genseq's dropout")
    parser.add_argument("--bf16", action="store_true", help="also genseq under bf16 autocast")
    add_common_args(parser, shared=False)
    args = parser.parse_args()
    ceiling, n = matmul_ceiling(args.repeats)
    g_label, g_step, flops = genseq_step(args)
    a_label, a_step = anchor_step(args)
    steps = {g_label: g_step, a_label: a_step}
    rows = [["fp32 matmul ceiling (torch.mm)", "", f"{ceiling:.1f}", "100%", "", f"n = {n}"]]
    ceilings = dict.fromkeys(steps, ceiling)
    if args.bf16:
        bf16_ceiling, bf16_n = matmul_ceiling(args.repeats, "bfloat16")
        b_label, b_step, _ = genseq_step(args, "bf16")
        steps[b_label], ceilings[b_label] = b_step, bf16_ceiling
        share = f"{bf16_ceiling / ceiling:.0%} of fp32"
        rows.append(["bf16 matmul ceiling (torch.mm)", "", f"{bf16_ceiling:.1f}", share, ""])
        rows[-1].append(f"n = {bf16_n}")
    for step in steps.values():  # warm up: first steps allocate and pick kernels
        rate(step, args, 0.0)
    rates: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(args.rounds):
        for label, step in steps.items():
            rates[label].append(rate(step, args, args.seconds))
    anchor = statistics.median(rates[a_label])
    for label, found in rates.items():
        tok_s = statistics.median(found)
        gflops = tok_s * flops / 1e9
        spread = f"rounds {min(found):,.0f}-{max(found):,.0f}"
        rows.append(
            [
                label,
                f"{tok_s:,.0f}",
                f"{gflops:.1f}",
                f"**{gflops / ceilings[label]:.0%}**",
                f"{tok_s / anchor:.2f}",
                spread,
            ]
        )
    rows.append(["target (issue 6)", "", f"{TARGET_SHARE * ceiling:.1f}", "75%", "", ""])
    headers = ["system", "train tokens/s", "GFLOP/s", "share of ceiling", "ratio", "notes"]
    table = markdown_table(headers, rows)
    notes = (
        f"Shape: {args.layers}x{args.hidden} LSTM, embedding {args.embed}, batch {args.batch}, "
        f"sequence {args.seq}, vocabulary {args.vocab}: {flops / 1e6:.2f} MFLOP per token "
        f"(6 x weights touched); median of {args.rounds} alternating rounds of "
        f"{args.seconds:g} s. Ratio: tokens/s over the plain LSTM's. A bf16 row's share is "
        "of the bf16 ceiling."
    )
    emit("training throughput (2x512 char LSTM)", table, args, notes)


if __name__ == "__main__":
    main()
