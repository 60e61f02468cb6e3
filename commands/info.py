"""`genseq info`: what a checkpoint holds and how it was trained."""

from __future__ import annotations

from typing import Annotated

import typer
from genseq.commands._common import JsonOpt, print_json, print_out


def info(
    checkpoint: Annotated[
        str,
        typer.Argument(
            help="A run or checkpoint directory, or a shipped model's name (genseq models list).",
            show_default=False,
        ),
    ],
    json_out: JsonOpt = False,
) -> None:
    """Show a checkpoint's model, tokenizer and training summary (on stdout)."""
    from genseq.checkpoint import inspect_checkpoint

    # The files' headers say all this: the model is never built, so a config that names a
    # huge model costs nothing here, and one its weights do not match is refused.
    ckpt = inspect_checkpoint(checkpoint)
    config = ckpt.config
    params = ckpt.parameters
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
    s = config.get("summary") or {}
    t = config.get("train") or {}
    lines = [
        f"checkpoint   {ckpt.path}",
        f"model        {ckpt.model_config.describe(params)}",
        f"tokenizer    {ckpt.tokenizer.describe()}",
        f"trained      {_count(s.get('step', 0))} steps, "
        f"{_count(s.get('tokens_seen', 0))} tokens, epoch {s.get('epoch', 0)}, "
        f"{_f(s.get('elapsed_s', 0), '.0f')} s on {s.get('device', '?')}"
        + (f" (stopped: {s['stop_reason']})" if s.get("stop_reason") else " (saved mid-run)"),
        f"loss         train {_f(s.get('train_loss'))}, validation {_f(s.get('val_loss'))} "
        f"nats/token (best: {_steps(s.get('best_step'))}, "
        f"{_f(s.get('best_val_loss'))} on {s.get('best_measured_on', 'the evaluation prefix')})",
        f"settings     batch {t.get('batch_size')} x {t.get('seq_len')}, {t.get('optimizer')} "
        f"lr {t.get('lr')}, {t.get('schedule')} schedule, seed {t.get('seed')}, "
        f"{t.get('precision') or 'fp32'}"
        + (f", weight average (decay {_f(t['ema'], 'g')})" if t.get("ema") else ""),
        *_embeddings(t),
        f"data         {s.get('data')}",
        f"created      {config.get('created')} by genseq {config.get('genseq_version')}",
    ]
    print_out("\n".join(lines))


# config.json is input: a summary value of the wrong type prints as unknown, not a crash.


def _embeddings(t: dict) -> list[str]:
    """The pretrained vectors a run started from (--embeddings), if any."""
    e = t.get("embeddings_loaded")
    if not isinstance(e, dict):
        return []
    found, total = e.get("found"), e.get("vocabulary")
    share = (
        f" ({100 * found / total:.1f}%)"
        if _count(found) != "?" and _count(total) not in ("?", "0")
        else ""
    )
    return [
        f"embeddings   {_count(found)} of {_count(total)} vocabulary words{share} from "
        f"{e.get('file')} ({_count(e.get('dimension'))}-dimensional {e.get('format')} vectors"
        + (", case-insensitive" if e.get("ignore_case") is True else "")
        + (", frozen" if t.get("freeze_embeddings") is True else "")
        + ")"
    ]


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _steps(step) -> str:
    return f"step {_count(step)}"


def _f(value, spec: str = ".4f") -> str:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return format(value, spec) if number and value == value else "-"
