"""`genseq train`: train a recurrent or Transformer language model on a data directory or a raw
corpus."""

from __future__ import annotations

import os
import sys
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
    number,
    options_for,
    print_json,
    refuse_stdout,
)
from genseq.commands.choices import Arch, Cell, OnNan, Optimizer, Precision, Schedule

Opt = typer.Option


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
    arch: Annotated[
        Arch | None,
        Opt(
            help="rnn (a recurrent stack, --cell) or transformer (a decoder-only Transformer "
            "sampled with a KV cache) [default: rnn].",
            show_default=False,
        ),
    ] = None,
    cell: Annotated[Cell | None, Opt(help="The recurrent cell [default: lstm].")] = None,
    num_layers: Annotated[
        int | None, Opt("--layers", help="Layers (recurrent or Transformer).")
    ] = None,
    hidden_size: Annotated[
        int | None, Opt(help="Units per recurrent layer, or the Transformer's width.")
    ] = None,
    embed_size: Annotated[int | None, Opt(help="Embedding width.")] = None,
    heads: Annotated[int | None, Opt(help="Attention heads (--arch transformer).")] = None,
    context: Annotated[
        int | None,
        Opt(help="Attention window in tokens (--arch transformer); sampling slides past it."),
    ] = None,
    attention: Annotated[
        int | None,
        Opt(
            help="Attend over the recurrent stack's last N outputs before the output layer "
            "(Luong's general score; 0: off) [default: 0].",
            show_default=False,
        ),
    ] = None,
    dropout: Annotated[
        float | None, Opt(help="Dropout between layers and before the output.")
    ] = None,
    weight_drop: Annotated[
        float | None,
        Opt(
            help="DropConnect share of the recurrent (hidden-to-hidden) weights in training, "
            "as AWD-LSTM's weight drop."
        ),
    ] = None,
    tie_weights: Annotated[
        bool | None,
        Opt(
            "--tie-weights/--no-tie-weights",
            help="Share input and output embeddings.",
            show_default=False,
        ),
    ] = None,
    adaptive_softmax: Annotated[
        str | None,
        Opt(
            help="Adaptive softmax cutoffs over frequency-ranked ids, e.g. 2000,10000 "
            "(several times cheaper for big word vocabularies), or off."
        ),
    ] = None,
    embeddings: Annotated[
        Path | None,
        Opt(
            help="Initialise the embedding from pretrained word vectors: a GloVe or word2vec "
            "text file (.txt or .txt.gz; word level only). Rows of words the file lacks keep "
            "genseq's initialisation; a learned projection maps vectors of another width "
            "than --embed-size (a Transformer's: its width).",
            show_default=False,
        ),
    ] = None,
    embeddings_ignore_case: Annotated[
        bool,
        Opt(
            "--embeddings-ignore-case",
            help="A word the vectors file lacks as spelled takes the file's first row in "
            "another casing (the files list words most frequent first).",
        ),
    ] = False,
    freeze_embeddings: Annotated[
        bool,
        Opt(
            "--freeze-embeddings",
            help="Keep the loaded vectors fixed in training; rows the file lacks still train.",
        ),
    ] = False,
    seq_len: Annotated[int | None, Opt(help="BPTT window (tokens).")] = None,
    batch_size: Annotated[int | None, Opt(help="Parallel streams per batch.")] = None,
    optimizer: Annotated[Optimizer | None, Opt(help="The optimizer [default: adamw].")] = None,
    lr: Annotated[float | None, Opt(help="Peak learning rate.")] = None,
    weight_decay: Annotated[float | None, Opt(help="Decoupled weight decay (AdamW) or L2.")] = None,
    schedule: Annotated[Schedule | None, Opt(help="Learning-rate schedule.")] = None,
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
        int | None,
        Opt(
            help="Validation tokens per periodic evaluation (default: sized to cost about 5% "
            "of the run; the final evaluation uses all).",
            show_default=False,
        ),
    ] = None,
    save_every: Annotated[
        str | None,
        Opt(help="Also save last/ every N steps (500) or seconds (30s, 5m).", show_default=False),
    ] = None,
    on_nan: Annotated[
        OnNan,
        Opt(
            help="On a non-finite loss: stop (keep the last good checkpoint) or skip (skip the "
            "update, halve the learning rate)."
        ),
    ] = "stop",
    nproc: Annotated[
        int | None,
        Opt(
            help="Train with N processes on this machine (launches torchrun; the batch is global).",
            show_default=False,
        ),
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
    precision: Annotated[
        Precision,
        Opt(
            help="bf16 autocast multiplies in bfloat16 and keeps fp32 "
            "weights (CPU only; auto: bf16 for characters on a CPU with AVX512-BF16 or AMX).",
        ),
    ] = "auto",
    ema: Annotated[
        float | None,
        Opt(
            help="Evaluate and save an average of the weights over the second half of the run, "
            "with this decay per step (0: off) [default: auto: on a CPU, for characters over a "
            "twelfth of the planned steps (at most 300), for small word corpora over all of them].",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool, Opt("--resume", help="Continue the run in --output from its last checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool, Opt("--overwrite", help="Delete an existing run in --output and start again.")
    ] = False,
    level: tk.LevelOpt = "auto",
    vocab_size: tk.VocabOpt = None,
    min_frequency: tk.MinFreqOpt = None,
    lowercase: tk.LowercaseOpt = False,
    val_fraction: tk.ValFractionOpt = 0.1,
    val: tk.ValOpt = None,
    glob: tk.GlobOpt = "*",
    abc_chords: tk.ChordsOpt = False,
    abc_decorations: tk.DecorationsOpt = False,
    abc_grace: tk.GraceOpt = False,
    transpose: tk.TransposeOpt = None,
    augment_keys: tk.AugmentOpt = 0,
    steps_per_quarter: tk.StepsPerQuarterOpt = None,
    pitch_range: tk.PitchRangeOpt = None,
    midi_track: tk.MidiTrackOpt = None,
    midi_program: tk.MidiProgramOpt = None,
    encoding_errors: EncodingErrorsOpt = "strict",
    cache_dir: CacheDirOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a character-, word-, BPE-, ABC- or MIDI-level LSTM/GRU/RNN or Transformer model.

    With no other flag, genseq sizes the model to the corpus and plans a few minutes of
    training on the device at hand; --time-budget bounds the whole command's wall time.
    Ctrl-C saves the last checkpoint and exits (resume with --resume).
    """
    from genseq.distributed import context_from_env
    from genseq.errors import UsageError
    from genseq.plan import TrainConfig, parse_cutoffs
    from genseq.training import run_dir as run_dirs
    from genseq.training import run_guard

    refuse_stdout(output, "train writes a run directory")
    run_dir = output or run_dirs.default_run_dir(sources[0])
    config = options_for(
        TrainConfig,
        locals(),
        adaptive_cutoffs=None if adaptive_softmax is None else parse_cutoffs(adaptive_softmax),
        seed=seed if seed is not None else 1337,
        precision=None if precision == "auto" else precision,
        embeddings=None if embeddings is None else str(embeddings),
        embeddings_ignore_case=embeddings_ignore_case or None,  # unset: a resume keeps it
        freeze_embeddings=freeze_embeddings or None,
    )
    config.validate()
    if resume and overwrite:
        raise UsageError("--resume and --overwrite contradict each other")
    if resume and seed is not None:
        raise UsageError("--seed cannot change when resuming")
    # Check everything that can fail before anything is tokenized or deleted.
    from genseq.device import resolve_device
    from genseq.plan import check_precision

    check_precision(config.precision, resolve_device(device), config.adaptive_cutoffs, config.arch)
    run_dirs.check_sources(sources + (val or []), run_dir if overwrite else None)
    if embeddings is not None:
        _check_embeddings(embeddings, sources, level)
    if nproc is not None and nproc < 1:
        raise UsageError("--nproc must be at least 1")
    ctx = context_from_env()
    with run_guard.locked(run_dir, enabled=ctx.is_main):
        run_guard.recover(run_dir)
        if resume:
            run_dirs.last_checkpoint(run_dir)
        if overwrite:
            run_dirs.check_overwritable(run_dir)
        with run_guard.guarded(run_dir, overwrite and ctx.is_main):
            code = _train_in(run_dir, sources, val, config, resume, nproc, ctx, locals())
            if code:  # inside the guard: a run that failed before its first save is undone
                raise typer.Exit(code)


def _check_embeddings(path: Path, sources: list[str], level: str) -> None:
    """--embeddings before anything is tokenized: word level, and a file whose first line
    is GloVe's or word2vec's (the whole file is read once the vocabulary is known)."""
    from genseq.data import is_data_dir
    from genseq.embeddings import check_file
    from genseq.errors import UsageError

    data_dir = len(sources) == 1 and is_data_dir(Path(sources[0]))
    if level not in ("word", "auto") or (level == "auto" and not data_dir):
        raise UsageError(f"--embeddings loads word vectors: it needs --level word, not {level}")
    check_file(path)


def _train_in(run_dir, sources, val, config, resume, nproc, ctx, options: dict) -> int:
    """Tokenize the sources when they are not a data directory, then train (or launch the
    processes that train); the exit code."""
    from genseq.data import is_data_dir, open_data
    from genseq.distributed import teardown
    from genseq.errors import UsageError
    from genseq.progress import RichReporter
    from genseq.train import Trainer
    from genseq.training import run_dir as run_dirs
    from genseq.training import run_guard

    quiet, batch_size = options["quiet"], options["batch_size"]
    launch = nproc is not None and nproc > 1 and not ctx.enabled
    if len(sources) == 1 and is_data_dir(Path(sources[0])):
        data_dir = Path(sources[0])
        if val:
            raise UsageError(
                f"--val needs raw sources: {data_dir} holds its validation split already"
            )
    else:
        data_dir = run_dir / "data"
        if ctx.enabled and not is_data_dir(data_dir):
            raise UsageError(
                "under torchrun, train on a data directory: run `genseq tokenize` first "
                "(or use `genseq train --nproc N`, which does)"
            )
        if not (is_data_dir(data_dir) and (resume or ctx.enabled)):
            if not resume:
                run_dirs.check_fresh(run_dir)
            from genseq.prepare import TokenizeOptions

            # The tokenize options `genseq train` shares (its own --seed is the training's).
            tokenize = options_for(TokenizeOptions, options, seed=TokenizeOptions.seed)
            glob, cache_dir = options["glob"], options["cache_dir"]
            tk.run_tokenize(sources, data_dir, tokenize, glob, cache_dir, quiet, val)
    data = open_data(data_dir)
    if launch and batch_size is not None and batch_size % (nproc or 1):
        raise UsageError(
            f"--batch-size {batch_size} must be a multiple of --nproc {nproc} "
            "(it is the global batch, shared out among the processes)"
        )
    if launch:
        run_guard.release(run_dir)  # the launched processes train under their own lock
        return launch_torchrun(nproc or 1)
    reporter = RichReporter(quiet=quiet)
    try:
        trainer = Trainer(
            config, data, run_dir, reporter, resume=resume, process_start=PROCESS_START
        )
        result = trainer.run()
    except BaseException:
        teardown(ctx, together=False)
        raise
    teardown(ctx)
    s = result.summary
    if ctx.is_main:
        _report_done(s, run_dir, reporter, quiet, options["json_out"])
    code = EXIT_CODES.get(s["stop_reason"], 0)
    if ctx.enabled:
        # A torchrun worker leaves here, everything saved and printed: gloo's threads can
        # abort the interpreter's shutdown after a run that ended well ("terminate called
        # without an active exception"), which torchrun would report as a failed worker.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _report_done(s: dict, run_dir: Path, reporter, quiet: bool, json_out: bool) -> None:
    """The done line on stderr, and the summary as JSON on stdout with --json."""
    if not quiet:
        reporter.message(
            f"done ({s['stop_reason']}): {s['step']:,} steps, {s['tokens_seen']:,} tokens in "
            f"{s['elapsed_s']:.0f} s; final validation loss {number(s['val_loss'])}"
            + _best_phrase(s, run_dir)
            + "\ncheckpoints: "
            + ", ".join(str(run_dir / n) for n in ("best", "last") if (run_dir / n).exists())
            + f"; sample with: genseq sample {run_dir}"
        )
    if json_out:
        print_json({"schema": 1, "run": str(run_dir), **s})


def _best_phrase(s: dict, run_dir: Path) -> str:
    """The checkpoint that commands reading the run directory use, and its loss."""
    if s["best_val_loss"] is None:
        return ""
    return (
        f"\ncommands use {run_dir / 'best'} (step {s['best_step']:,}): validation loss "
        f"{number(s['best_val_loss'])} on {s['best_measured_on']}"
    )


EXIT_CODES = {"interrupted": 130, "terminated": 143}  # 128 + SIGINT, 128 + SIGTERM


def launch_torchrun(nproc: int) -> int:
    """Run this same command under torchrun with ``nproc`` processes on this machine.

    The data directory is ready (tokenized above), so the workers only train. Threads are
    shared out among the processes unless OMP_NUM_THREADS is set. Workers print their own
    errors; a failed worker ends the launch with its exit code, not a launcher traceback.
    """

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    argv = []
    args = iter(sys.argv[1:])
    for arg in args:
        if arg == "--nproc":
            next(args, None)
        elif arg.startswith("--nproc=") or arg == "--overwrite":
            continue
        else:
            argv.append(arg)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    script = Path(sys.argv[0])
    entry = [str(script)] if script.name == "genseq" and script.is_file() else ["-m", "genseq"]
    launcher = ["--standalone", f"--nproc-per-node={nproc}", *entry, *argv]
    import logging

    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # we report
    from torch.distributed.elastic.multiprocessing.api import SignalException

    for name in list(logging.root.manager.loggerDict):  # the launcher's own log lines
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        torchrun(get_args_parser().parse_args(launcher))
    except SignalException as exc:  # Ctrl-C or SIGTERM: the workers saved and stopped
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        codes = [f.exitcode for f in exc.failures.values()]
        return next((c for c in codes if c in EXIT_CODES.values()), codes[0] if codes else 1)
    return 0
