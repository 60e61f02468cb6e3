"""Quality at a fixed wall-clock budget: genseq's defaults against the plain LSTM, same run.

    python benchmarks/quality_at_budget.py --budget 90,600 [--shared ../shared] [--no-record]
    python benchmarks/quality_at_budget.py --budget 90 -- --dropout 0 --lr 6e-3   # experiments

Tiny Shakespeare, first 90% train / last 10% validation. For each budget B, one after the other:
``genseq tokenize input.txt --level char`` (timed apart, outside the budget), then
``genseq train DATA --time-budget B --json --quiet`` with genseq's defaults (plus any flags given
after ``--``), then benchmarks/plain_lstm.py with the same whole-process budget, as a
subprocess so that its start-up counts too. Both report validation loss in nats per character
over the whole validation split (genseq's final evaluation: checked in its log.jsonl). The
genseq row's ratio is genseq / plain LSTM (below 1 is better). Quoted rows come from
../shared/anchors.md and were not measured here. genseq's split has an <eos> at each end of the
document, so its validation split holds one token more than the anchor's: negligible.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

from _common import add_common_args, emit, genseq_exe, markdown_table, require, run_timed

QUOTED = [  # (system, budget, loss, note) from ../shared/anchors.md
    ("nanoGPT CPU recipe (quoted)", 90, 1.886, "0.80 M params, 17,100 tok/s"),
    ("plain LSTM 2x512 (quoted)", 90, 1.816, "90 s of steps, 129 s with evals"),
    ("target (issue 6)", 90, 1.45, ""),
    ("nanoGPT on an A100 (quoted)", 600, 1.4697, "about 3 min on a GPU"),
    ("target (issue 6)", 600, 1.40, ""),
]


def run_genseq(data: Path, run: Path, budget: float, extra: list[str]) -> dict:
    cmd = [genseq_exe(), "train", str(data), "-o", str(run), "--time-budget", str(budget)]
    result = run_timed([*cmd, "--json", "--quiet", *extra])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line]
    finals = [r for r in log if r.get("kind") == "eval" and r.get("final")]
    if not finals or abs(finals[-1]["val_loss"] - summary["val_loss"]) > 1e-9:
        sys.exit(f"{run}: no final evaluation over the whole validation split in log.jsonl")
    rates = [r["tok_s"] for r in log if r.get("kind") == "train"]
    return {
        "wall": result.wall_s,
        "tokens": summary["tokens_seen"],
        "step_rate": statistics.median(rates) if rates else float("nan"),
        "val_loss": summary["val_loss"],
        "note": f"{summary['parameters']:,} params, {summary['step']:,} steps",
    }


def run_anchor(text: Path, budget: float, extra: list[str]) -> dict:
    script = Path(__file__).with_name("plain_lstm.py")
    cmd = [sys.executable, str(script), "--text", str(text), "--budget", str(budget), *extra]
    result = run_timed(cmd)
    s = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "wall": result.wall_s,
        "tokens": s["tokens_seen"],
        "step_rate": s["train_tokens_per_s"],
        "val_loss": s["val_loss"],
        "note": f"{s['parameters']:,} params, {s['steps']:,} steps",
        "name": f"plain LSTM {s['config']['layers']}x{s['config']['hidden']}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", action="append", help="seconds; repeat or give a list (default 90)"
    )
    parser.add_argument("--max-chars", type=int, default=0, help="use a prefix (tiny runs)")
    parser.add_argument("--anchor-args", default="", help='plain_lstm.py flags, e.g. "--layers 1"')
    add_common_args(parser)
    parser.add_argument("train_args", nargs="*", help="more `genseq train` flags, after --")
    args = parser.parse_args()
    budgets = [float(b) for spec in args.budget or ["90"] for b in spec.split(",") if b]
    corpus = require(args.shared / "corpora" / "tinyshakespeare" / "input.txt")
    rows = []
    with tempfile.TemporaryDirectory(prefix="genseq-quality-") as name:
        tmp = Path(name)
        text = tmp / "input.txt"
        content = corpus.read_text(encoding="utf-8")
        text.write_text(content[: args.max_chars] if args.max_chars else content, "utf-8")
        tok = run_timed(
            [genseq_exe(), "tokenize", str(text), "-o", str(tmp / "data"), "--level", "char"]
            + ["--quiet"]
        )
        for budget in budgets:
            g = run_genseq(tmp / "data", tmp / f"run-{budget:g}", budget, args.train_args)
            a = run_anchor(text, budget, shlex.split(args.anchor_args))
            flags = f" {' '.join(args.train_args)}" if args.train_args else ""
            for system, r in ((f"genseq defaults{flags}", g), (a["name"], a)):
                ratio = f"{g['val_loss'] / a['val_loss']:.3f}" if r is g else "1"
                rows.append(
                    [
                        system,
                        f"{budget:g} s",
                        f"{r['wall']:.1f} s",
                        f"{r['tokens'] / r['wall']:,.0f} ({r['step_rate']:,.0f})",
                        f"**{r['val_loss']:.4f}**",
                        ratio,
                        r["note"],
                    ]
                )
            for system, b, loss, note in QUOTED:
                if b == budget:
                    rows.append([system, f"{b} s", "", "", f"{loss}", "", note])
    headers = [
        "system",
        "budget",
        "wall time",
        "tokens/s over wall (in steps)",
        "val loss (nats/char)",
        "ratio genseq/anchor",
        "notes",
    ]
    table = markdown_table(headers, rows)
    notes = (
        f"Tokenizing took {tok.wall_s:.1f} s (outside the budgets). Quoted rows: "
        "../shared/anchors.md, not measured here."
    )
    emit("quality at a wall-clock budget (Tiny Shakespeare)", table, args, notes)


if __name__ == "__main__":
    main()
