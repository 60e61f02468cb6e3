"""`genseq info`: what a checkpoint holds and how it was trained."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from genseq.commands._common import JsonOpt, print_json, print_out


def info(
    checkpoint: Annotated[
        Path, typer.Argument(help="A run directory or checkpoint directory.", show_default=False)
    ],
    json_out: JsonOpt = False,
) -> None:
    """Show a checkpoint's model, tokenizer and training summary (on stdout)."""
    from genseq.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint, "cpu")
    config = ckpt.config
    params = ckpt.model.num_parameters()
    if json_out:
        print_json(
            {
                "schema": 1,
                "checkpoint": str(ckpt.path),
                "parameters": params,
                "tokenizer": {**config["tokenizer"], "describe": ckpt.tokenizer.describe()},
                "model": config["model"],
                "train": config.get("train", {}),
                "summary": config.get("summary", {}),
                "genseq_version": config.get("genseq_version"),
                "created": config.get("created"),
            }
        )
        return
    s = config.get("summary", {})
    t = config.get("train", {})
    lines = [
        f"checkpoint   {ckpt.path}",
        f"model        {ckpt.model.describe()}",
        f"tokenizer    {ckpt.tokenizer.describe()}",
        f"trained      {s.get('step', 0):,} steps, {s.get('tokens_seen', 0):,} tokens, "
        f"epoch {s.get('epoch', 0)}, {s.get('elapsed_s', 0):.0f} s on {s.get('device', '?')}"
        + (f" (stopped: {s['stop_reason']})" if s.get("stop_reason") else " (saved mid-run)"),
        f"loss         train {_f(s.get('train_loss'))}, validation {_f(s.get('val_loss'))} "
        f"nats/token (best: {_steps(s.get('best_step'))}, "
        f"{_f(s.get('best_val_loss'))} on {s.get('best_measured_on', 'the evaluation prefix')})",
        f"settings     batch {t.get('batch_size')} x {t.get('seq_len')}, {t.get('optimizer')} "
        f"lr {t.get('lr')}, {t.get('schedule')} schedule, seed {t.get('seed')}, "
        f"{t.get('precision') or 'fp32'}"
        + (f", weight average (decay {t['ema']:g})" if t.get("ema") else ""),
        f"data         {s.get('data')}",
        f"created      {config.get('created')} by genseq {config.get('genseq_version')}",
    ]
    print_out("\n".join(lines))


def _steps(step) -> str:
    return f"step {step:,}" if isinstance(step, int) else "step ?"


def _f(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and value == value else "-"
