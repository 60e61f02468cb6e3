"""`genseq train`: train a recurrent language model on a data directory or a raw corpus."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from genseq.commands import tokenize_corpus as tk
from genseq.commands._common import (
    PROCESS_START,
    CacheDirOpt,
    DeviceOpt,
    EncodingErrorsOpt,
    JsonOpt,
    QuietOpt,
    print_json,
)

Opt = typer.Option


def _default_run_dir(source: str) -> Path:
    name = Path(source.rstrip("/")).stem if source != "-" else "stdin"
    return Path("checkpoints") / (name or "run")


def train(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="A data directory from `genseq tokenize`, or files, directories, "
            "corpus names or - (tokenized on the fly into RUN/data).",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        Opt(
            "--output",
            "-o",
            help="Run directory (default: checkpoints/<source name>).",
            show_default=False,
        ),
    ] = None,
    cell: Annotated[str | None, Opt(help="lstm | gru | rnn-tanh | rnn-relu.")] = None,
    layers: Annotated[int | None, Opt("--layers", help="Recurrent layers.")] = None,
    hidden_size: Annotated[int | None, Opt(help="Units per recurrent layer.")] = None,
    embed_size: Annotated[int | None, Opt(help="Embedding width.")] = None,
    dropout: Annotated[
        float | None, Opt(help="Dropout between layers and before the output.")
    ] = None,
    tie_weights: Annotated[
        bool | None,
        Opt(
            "--tie-weights/--no-tie-weights",
            help="Share input and output embeddings.",
            show_default=False,
        ),
    ] = None,
    seq_len: Annotated[int | None, Opt(help="BPTT window (tokens).")] = None,
    batch_size: Annotated[int | None, Opt(help="Parallel streams per batch.")] = None,
    optimizer: Annotated[str | None, Opt(help="adamw | adam | sgd.")] = None,
    lr: Annotated[float | None, Opt(help="Peak learning rate.")] = None,
    weight_decay: Annotated[float | None, Opt(help="Decoupled weight decay (AdamW) or L2.")] = None,
    schedule: Annotated[str | None, Opt(help="cosine | plateau | constant.")] = None,
    warmup_steps: Annotated[int | None, Opt(help="Linear warm-up steps.")] = None,
    clip_norm: Annotated[float | None, Opt(help="Clip the gradient norm (0 = off).")] = None,
    clip_value: Annotated[float | None, Opt(help="Clip each gradient value (0 = off).")] = None,
    max_steps: Annotated[int | None, Opt(help="Stop after this many steps.")] = None,
    epochs: Annotated[int | None, Opt(help="Stop after this many passes over the data.")] = None,
    time_budget: Annotated[
        float | None, Opt(help="Stop so that the whole command ends within this many seconds.")
    ] = None,
    eval_every: Annotated[
        int | None, Opt(help="Evaluate every N steps (default: 10 times per run).")
    ] = None,
    eval_tokens: Annotated[
        int | None, Opt(help="Validation tokens per periodic evaluation (the final one uses all).")
    ] = None,
    patience: Annotated[
        int | None, Opt(help="Stop after N evaluations without improvement.")
    ] = None,
    sample_tokens: Annotated[int, Opt(help="Print a sample of N tokens at each evaluation.")] = 0,
    seed: Annotated[
        int | None,
        Opt(help="Seed for weights, dropout and data order [default: 1337].", show_default=False),
    ] = None,
    device: DeviceOpt = "auto",
    resume: Annotated[
        bool, Opt("--resume", help="Continue the run in --output from its last checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool, Opt("--overwrite", help="Delete an existing run in --output and start again.")
    ] = False,
    level: tk.LevelOpt = "char",
    vocab_size: tk.VocabOpt = None,
    min_frequency: tk.MinFreqOpt = None,
    lowercase: tk.LowercaseOpt = False,
    val_fraction: tk.ValFractionOpt = 0.1,
    glob: tk.GlobOpt = "*",
    encoding_errors: EncodingErrorsOpt = "strict",
    cache_dir: CacheDirOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a character-, word- or BPE-level LSTM/GRU/RNN language model.

    With no other flag, genseq sizes the model to the corpus and plans a few minutes of
    training on the device at hand; --time-budget bounds the whole command's wall time.
    Ctrl-C saves the last checkpoint and exits (resume with --resume).
    """
    from genseq.data import is_data_dir, open_data
    from genseq.errors import GenseqError, UsageError
    from genseq.plan import TrainConfig
    from genseq.progress import RichReporter
    from genseq.train import Trainer

    run_dir = output or _default_run_dir(sources[0])
    config = TrainConfig(
        cell=cell,
        num_layers=layers,
        hidden_size=hidden_size,
        embed_size=embed_size,
        dropout=dropout,
        tie_weights=tie_weights,
        seq_len=seq_len,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        schedule=schedule,
        warmup_steps=warmup_steps,
        clip_norm=clip_norm,
        clip_value=clip_value,
        max_steps=max_steps,
        epochs=epochs,
        time_budget=time_budget,
        patience=patience,
        eval_every=eval_every,
        eval_tokens=eval_tokens,
        sample_tokens=sample_tokens,
        seed=seed if seed is not None else 1337,
        device=device,
    )
    config.validate()
    if resume and overwrite:
        raise UsageError("--resume and --overwrite contradict each other")
    if resume and seed is not None:
        raise UsageError("--seed cannot change when resuming")
    if overwrite and run_dir.exists():
        if not ((run_dir / "last").exists() or (run_dir / "log.jsonl").exists()):
            raise GenseqError(f"{run_dir} is not a genseq run directory; not deleting it")
        shutil.rmtree(run_dir)

    if len(sources) == 1 and is_data_dir(Path(sources[0])):
        data_dir = Path(sources[0])
    else:
        data_dir = run_dir / "data"
        if not (resume and is_data_dir(data_dir)):
            if not resume:
                Trainer.check_fresh_out_dir(run_dir)
            tk.run_tokenize(
                sources,
                data_dir,
                level,
                vocab_size,
                min_frequency,
                lowercase,
                val_fraction,
                "auto",
                glob,
                42,
                "auto",
                encoding_errors,
                cache_dir,
                quiet,
            )
    data = open_data(data_dir)
    reporter = RichReporter(quiet=quiet)
    trainer = Trainer(config, data, run_dir, reporter, resume=resume, process_start=PROCESS_START)
    result = trainer.run()
    s = result.summary
    if not quiet:
        best = s["best_val_loss"]
        reporter.message(
            f"done ({s['stop_reason']}): {s['step']:,} steps, {s['tokens_seen']:,} tokens in "
            f"{s['elapsed_s']:.0f} s; validation loss {s['val_loss']:.4f}"
            + (f", best {best:.4f}" if best is not None else "")
            + f"\ncheckpoints: {run_dir}/best, {run_dir}/last; sample with: genseq sample {run_dir}"
        )
    if json_out:
        print_json({"schema": 1, "run": str(run_dir), **s})
    if s["stop_reason"] == "interrupted":
        raise typer.Exit(130)
