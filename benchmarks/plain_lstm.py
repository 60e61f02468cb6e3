"""The anchor: a plain hand-written PyTorch char-LSTM, exactly as ../shared/anchors.md describes.

    python benchmarks/plain_lstm.py --budget 90 [--shared ../shared] [--hidden 512 --layers 2]

Embedding 128 -> LSTM 2x512 -> Linear, over Tiny Shakespeare's own character vocabulary; first
90% train, last 10% validation; random windows of 128 characters, batch 32, Adam 2e-3, gradient
norm clipped at 1.0, zero initial state per window. No genseq code: it is the baseline genseq
must beat. Training stops so that the whole process (counted from its start in /proc, so
imports and data loading count, as for ``genseq train --time-budget``) ends within ``--budget``
seconds including the final evaluation, which reads the WHOLE validation split once (32
contiguous streams, state carried, every prediction counted once). Prints one JSON line:
validation loss in nats/char and training tokens/s (training steps only). ``train`` and
``make_model``/``make_step`` are importable (benchmarks/train_throughput.py times the step).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

T0 = time.perf_counter()


def process_age() -> float:
    """Seconds since this process started (from /proc), else since this module was loaded."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - T0


@dataclass
class LSTMConfig:
    embed: int = 128
    hidden: int = 512
    layers: int = 2
    seq: int = 128
    batch: int = 32
    lr: float = 2e-3
    clip: float = 1.0
    seed: int = 0


def make_model(vocab: int, cfg: LSTMConfig):
    import torch
    from torch import nn

    class CharLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, cfg.embed)
            self.lstm = nn.LSTM(cfg.embed, cfg.hidden, cfg.layers, batch_first=True)
            self.head = nn.Linear(cfg.hidden, vocab)

        def forward(self, x: torch.Tensor, state=None):
            out, state = self.lstm(self.embed(x), state)  # (B, T, H)
            return self.head(out), state  # (B, T, V)

    return CharLSTM()


def make_step(model, cfg: LSTMConfig):
    """One training step on ``(x, y)``: forward, loss, backward, clip, Adam; returns the loss."""
    import torch
    from torch.nn import functional as F

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        return loss

    return step


def evaluate(model, data, streams: int = 32, seq: int = 256) -> float:
    """Mean nats per prediction over all ``len(data) - 1`` predictions, state carried."""
    import torch
    from torch.nn import functional as F

    n = len(data) - 1
    length = math.ceil(n / streams)
    x = torch.zeros(streams * length, dtype=torch.long)
    y = torch.full((streams * length,), -1, dtype=torch.long)
    x[:n], y[:n] = data[:-1], data[1:]
    x, y = x.view(streams, length), y.view(streams, length)
    nats, state = 0.0, None
    model.eval()
    with torch.no_grad():
        for t in range(0, length, seq):
            logits, state = model(x[:, t : t + seq], state)  # (B, T, V)
            target = y[:, t : t + seq].reshape(-1)
            flat = logits.reshape(-1, logits.size(-1))
            nats += F.cross_entropy(flat, target, ignore_index=-1, reduction="sum").item()
    model.train()
    return nats / n


def train(text: str, budget: float, cfg: LSTMConfig, val_fraction: float = 0.1) -> dict:
    import torch

    torch.manual_seed(cfg.seed)
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([lookup[c] for c in text], dtype=torch.long)
    cut = int(len(data) * (1 - val_fraction))
    train_data, val_data = data[:cut], data[cut:]
    model = make_model(len(chars), cfg)
    step = make_step(model, cfg)
    offsets = torch.arange(cfg.seq + 1)
    steps, tokens, train_s, eval_rate = 0, 0, 0.0, None
    while True:
        if steps >= 3:  # forward-only evaluation runs about 3x the training rate
            eval_rate = 3 * tokens / train_s
        reserve = len(val_data) / eval_rate + 1.0 if eval_rate else 1.0
        if process_age() + reserve >= budget:
            break
        t = time.perf_counter()
        starts = torch.randint(len(train_data) - cfg.seq - 1, (cfg.batch, 1))
        window = train_data[starts + offsets]  # (B, T + 1)
        loss = step(window[:, :-1], window[:, 1:])
        steps += 1
        tokens += cfg.batch * cfg.seq
        train_s += time.perf_counter() - t
    t = time.perf_counter()
    val_loss = evaluate(model, val_data)
    return {
        "system": "plain LSTM",
        "val_loss": val_loss,
        "train_loss": float(loss.item()) if steps else math.nan,
        "steps": steps,
        "tokens_seen": tokens,
        "train_tokens_per_s": tokens / max(train_s, 1e-9),
        "train_s": train_s,
        "eval_s": time.perf_counter() - t,
        "elapsed_s": process_age(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab": len(chars),
        "config": asdict(cfg),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=90.0, help="whole-process seconds")
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared")
    parser.add_argument("--text", type=Path, help="train on this file instead")
    parser.add_argument("--max-chars", type=int, default=0, help="use only the first N chars")
    defaults = LSTMConfig()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name}", type=type(value), default=value)
    args = parser.parse_args()
    path = args.text or args.shared / "corpora" / "tinyshakespeare" / "input.txt"
    if not path.is_file():
        sys.exit(f"skipped: {path} is absent (the shared corpora are needed; pass --shared DIR)")
    text = path.read_text(encoding="utf-8")
    if args.max_chars:
        text = text[: args.max_chars]
    cfg = LSTMConfig(**{k: getattr(args, k) for k in asdict(defaults)})
    print(json.dumps(train(text, args.budget, cfg)))


if __name__ == "__main__":
    main()
