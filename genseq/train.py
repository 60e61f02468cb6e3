"""The one training loop, for every level and domain.

Truncated BPTT over contiguous streams (``data.StreamBatches``): the recurrent state is carried
from one window to the next and detached, as char-rnn and word_language_model do. The loop
knows nothing about text or music; it reads token ids, writes checkpoints and reports to a
``progress.Reporter``. A run directory holds::

    best/  last/    checkpoints (last/ also holds train_state.pt for --resume)
    log.jsonl       one JSON object per log interval and per evaluation
    loss.png        training and validation loss curves

Resuming restores the weights, optimizer, schedule, RNG states, data position and hidden
state, so an interrupted and resumed run ends with the same parameters as an uninterrupted one
(step-planned runs; time-budgeted runs depend on the clock by design).
"""

from __future__ import annotations

import json
import math
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from genseq import distributed
from genseq.averaging import EMA_START, averaged_state, resume_average, start_average
from genseq.checkpoint import (
    Checkpoint,
    find_checkpoint,
    load_train_state,
    read_config,
    save_checkpoint,
)
from genseq.data import StreamBatches, TokenData
from genseq.device import configure_device, native_bf16, resolve_device
from genseq.errors import GenseqError, UsageError
from genseq.evaluate import evaluate_tokens
from genseq.fileio import atomic_write_text, remove_stale_staging
from genseq.model import ModelConfig, RecurrentLM, State, detach_state
from genseq.plan import TrainConfig, check_precision, parse_save_every, plan
from genseq.progress import Reporter, SilentReporter
from genseq.schedule import Schedule

EVAL_MARKS = 10  # evaluations per run when --eval-every is not given
STOPPING_FIELDS = ("max_steps", "epochs", "time_budget", "patience", "save_every", "on_nan")
EVAL_STREAMS = 32
EVAL_SEQ_LEN = 256
MAX_SKIPS_IN_A_ROW = 10  # --on-nan skip: past this, the run is diverging, not unlucky
# Periodic evaluations read a prefix of the validation split sized from the run itself: 0.15 x
# the tokens trained before the first one (a forward pass costs about a third of a training
# step per token, so 10 evaluations cost about 5% of the run; with 0.3 they took 6.5% of a
# 90 s run, time that is better spent training), within these bounds.
EVAL_SHARE = 0.15
EVAL_MIN_TOKENS, EVAL_MAX_TOKENS = 4_096, 262_144
END_RESERVE_S = 2.0  # kept under --time-budget for the last save, the loss plot and exit


@dataclass
class TrainResult:
    summary: dict
    out_dir: Path


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on matrices only; biases and gains are not decayed.

    Adam runs fused (one kernel for every parameter) on CPU and CUDA: 1.3 -> 0.55 ms a step
    for a 1x384 character LSTM, 4% of the step (BENCHMARKS.md).
    """
    fused = _fused(model)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, fused=fused)
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused)


def _fused(model: nn.Module) -> bool | None:
    return next(model.parameters()).device.type in ("cpu", "cuda") or None


def _state_to_list(state: State) -> list[torch.Tensor]:
    return [t.cpu() for t in state] if isinstance(state, tuple) else [state.cpu()]


def _state_from_list(tensors: list[torch.Tensor], device: torch.device) -> State:
    moved = [t.to(device) for t in tensors]
    return tuple(moved) if len(moved) == 2 else moved[0]  # type: ignore[return-value]


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        data: TokenData,
        out_dir: Path,
        reporter: Reporter | None = None,
        resume: bool = False,
        process_start: float | None = None,
        on_step: Callable[[Trainer], None] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.data = data
        self.reporter = reporter or SilentReporter()
        self.resume = resume
        self.session_start = process_start or time.perf_counter()
        self.on_step = on_step
        self.stop_reason: str | None = None
        self.step = 0
        self.dist = distributed.context_from_env()
        self.device = distributed.setup(self.dist, resolve_device(cfg.device))
        configure_device(self.device)
        if not self.dist.is_main:  # only rank 0 reports, logs and writes files
            self.reporter = SilentReporter()
        self.tokenizer = data.tokenizer()
        if self.tokenizer.vocab_size != data.vocab_size:
            raise GenseqError(f"{data.path}: tokenizer.json does not match meta.json")
        if len(data.train) < 2:
            raise GenseqError(f"{data.path}: the training split is empty")
        self.resume_state: dict | None = None
        if resume:
            cfg = self._resumed_config(cfg)
        else:
            self.check_fresh_out_dir(self.out_dir)
            cfg = plan(
                cfg,
                len(data.train),
                data.vocab_size,
                data.level,
                self.device,
                self.dist.world_size,
                data.distinct_train_tokens,
                native_bf16(self.device),
            )
        self.cfg = cfg

    # -- set-up ----------------------------------------------------------------------------------
    @staticmethod
    def check_fresh_out_dir(out_dir: Path) -> None:
        """Refuse to train into a directory holding anything but a genseq data directory."""
        from genseq.data import is_data_dir

        out_dir = Path(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise GenseqError(f"{out_dir} is a file; choose another -o")
        if (out_dir / "last").exists() or (out_dir / "log.jsonl").exists():
            raise GenseqError(
                f"{out_dir} already holds a training run; pass --resume to continue "
                "it, --overwrite to start again, or choose another -o"
            )
        if out_dir.is_dir():
            others = [
                p
                for p in out_dir.iterdir()
                if not (p.name == "data" and is_data_dir(p)) and not p.name.startswith(".")
            ]
            if others:
                raise GenseqError(f"{out_dir} exists and is not empty; choose another -o")

    def _resumed_config(self, given: TrainConfig) -> TrainConfig:
        """The saved run's settings; only the stopping settings may be changed on resume."""
        try:
            last = find_checkpoint(self.out_dir / "last")
        except GenseqError:
            raise GenseqError(f"{self.out_dir}: no last/ checkpoint to resume from") from None
        saved = read_config(last)
        try:
            same_tokenizer = (last / "tokenizer.json").read_text("utf-8") == (
                self.data.path / "tokenizer.json"
            ).read_text("utf-8")
        except OSError:
            same_tokenizer = False
        if not same_tokenizer:
            raise GenseqError(
                f"{self.out_dir} was trained with another tokenizer than {self.data.path}'s; "
                "resume on the data it was started on"
            )
        cfg = TrainConfig.from_dict(saved.get("train", {}))
        if cfg.ema is None:  # saved before --ema existed: no average
            cfg.ema = 0.0
        if cfg.weight_drop is None:  # saved before --weight-drop existed
            cfg.weight_drop = 0.0
        for name in TrainConfig.__dataclass_fields__:
            value = getattr(given, name)
            if name in STOPPING_FIELDS and value is not None:
                setattr(cfg, name, value)
            elif name in ("device", "sample_tokens"):
                setattr(cfg, name, value)
            elif name == "precision" and value is not None:  # weights stay fp32 either way
                cfg.precision = value
            elif value is not None and name != "seed" and value != getattr(cfg, name):
                raise UsageError(
                    f"--{name.replace('_', '-')} {value} differs from the run being resumed "
                    f"({getattr(cfg, name)}); settings other than stopping ones cannot change"
                )
        cfg.precision = cfg.precision or "fp32"  # runs saved before --precision existed
        check_precision(cfg.precision, self.device, cfg.adaptive_cutoffs)
        if cfg.precision == "bf16" and not native_bf16(self.device):
            self.reporter.message(
                "note: this run trains in bf16, which this CPU only emulates (slowly); "
                "resume with --precision fp32 to continue in fp32"
            )
        if saved.get("summary", {}).get("data") not in (None, str(self.data.path.resolve())):
            self.reporter.message(
                f"note: resuming on data {self.data.path} "
                f"(the run was started on {saved['summary']['data']})"
            )
        self.resume_state = load_train_state(last)
        self.resume_ckpt = last
        return cfg

    def request_stop(self, reason: str = "interrupted") -> None:
        """Finish the current step, save, and return (Ctrl-C and SIGTERM call this)."""
        self.stop_reason = reason

    def _install_signals(self) -> list:
        """Ctrl-C and SIGTERM finish the step, save and stop; a second Ctrl-C aborts.

        Under torchrun a signal can reach a process twice within moments (from the terminal
        and from the launcher); repeats within 2 s are ignored so the save can finish.
        """
        if threading.current_thread() is not threading.main_thread():
            return []
        previous = []
        first = [0.0]

        def handler(signum, _frame):
            now = time.monotonic()
            if self.stop_reason in ("interrupted", "terminated"):
                if signum == signal.SIGINT and now - first[0] > 2.0:
                    raise KeyboardInterrupt
                return
            first[0] = now
            self.reporter.message(
                "stopping: finishing the step and saving (Ctrl-C again to abort without saving)"
            )
            self.request_stop("terminated" if signum == signal.SIGTERM else "interrupted")

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous.append((sig, signal.signal(sig, handler)))
        return previous

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, data, device, ctx = self.cfg, self.data, self.device, self.dist
        if ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_staging(self.out_dir)
        if cfg.batch_size % ctx.world_size:
            raise UsageError(
                f"--batch-size {cfg.batch_size} must be a multiple of the {ctx.world_size} "
                "processes (it is the global batch, shared out among them)"
            )
        local_batch = cfg.batch_size // ctx.world_size
        bf16 = cfg.precision == "bf16"  # autocast: bf16 matrix products, fp32 weights and loss
        save_steps, save_seconds = parse_save_every(cfg.save_every)

        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        model_config = ModelConfig(
            vocab_size=data.vocab_size,
            cell=cfg.cell,
            num_layers=cfg.num_layers,
            hidden_size=cfg.hidden_size,
            embed_size=cfg.embed_size,
            dropout=cfg.dropout,
            weight_drop=cfg.weight_drop,
            tie_weights=cfg.tie_weights,
            adaptive_cutoffs=list(cfg.adaptive_cutoffs or []),
        )
        model = RecurrentLM(model_config).to(device)
        optimizer = make_optimizer(model, cfg)
        batches = StreamBatches(
            data.train, cfg.batch_size, cfg.seq_len, cfg.seed, ctx.rank, ctx.world_size
        )
        total_steps = self._planned_steps(batches)
        if cfg.warmup_steps is None:
            cfg.warmup_steps = min(100, max(1, total_steps // 20)) if total_steps else 100
        schedule = Schedule(cfg.schedule, cfg.lr, cfg.warmup_steps)

        step = epoch = index = tokens_seen = bad_evals = marks_done = skipped = 0
        skips_in_a_row = 0
        best_val = math.inf
        best_step = 0
        train_seconds = 0.0
        state = model.init_state(local_batch, device)
        averaged = None  # the weight average (rank 0), once the run is EMA_START through
        if ctx.rank > 0:  # its own dropout masks; rank 0 keeps the one-process RNG stream
            torch.manual_seed(cfg.seed + ctx.rank)
        if self.resume_state is not None:
            from safetensors.torch import load_model

            rs = self.resume_state
            load_model(model, str(self.resume_ckpt / "model.safetensors"), device=str(device))
            if rs.get("ema"):  # the file held the average; the training weights are here
                averaged = resume_average(model, rs["ema"], cfg.ema, keep=ctx.is_main)
            optimizer.load_state_dict(rs["optimizer"])
            if cfg.optimizer != "sgd":  # a saved group carries its run's setting: fuse anyway
                for group in optimizer.param_groups:
                    group["fused"] = _fused(model)
            schedule.load_state_dict(rs["schedule"])
            step, epoch, index = int(rs["step"]), int(rs["epoch"]), int(rs["index"])
            tokens_seen, bad_evals = int(rs["tokens_seen"]), int(rs["bad_evals"])
            best_val, train_seconds = float(rs["best_val"]), float(rs["train_seconds"])
            best_step = int(rs.get("best_step", 0))
            marks_done, skipped = int(rs.get("marks_done", 0)), int(rs.get("skipped", 0))
            # The saved state is the global batch's: this process takes its own streams.
            hidden = [h[:, ctx.rank :: ctx.world_size] for h in rs["hidden"]]
            state = _state_from_list(hidden, device)
            rng = rs.get("rng_torch_ranks") or [rs["rng_torch"]]
            if len(rng) == ctx.world_size:
                torch.set_rng_state(rng[ctx.rank])
                if device.type == "cuda" and rs.get("rng_cuda_ranks"):
                    torch.cuda.set_rng_state(rs["rng_cuda_ranks"][ctx.rank], device)
            else:  # resumed with another number of processes: fresh dropout streams
                torch.manual_seed(cfg.seed + ctx.rank + 7919 * step)
            random.setstate(_to_tuple(rs["rng_python"]))
            if ctx.is_main:
                self._truncate_log(step)
            self.reporter.message(f"resuming {self.out_dir} at step {step:,} (epoch {epoch})")
        model.rnn.flatten_parameters()
        model.train()
        self.model = model
        net: nn.Module = model
        if ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        distributed.barrier(ctx)  # the run directory exists, every rank is ready

        self.reporter.message(self.describe_plan(model, batches, total_steps))
        self.reporter.start(total_steps, cfg.time_budget)
        log = _LogFile(self.out_dir / "log.jsonl" if ctx.is_main else None)
        session_t0 = time.perf_counter()
        session_tokens0, session_step0 = tokens_seen, step
        setup_seconds = session_t0 - self.session_start
        last_save_time = session_t0
        eval_rate = None  # validation tokens per second, measured
        val_all = data.val
        eval_size = cfg.eval_tokens or (self.resume_state or {}).get("eval_size")
        loss_sum = torch.zeros((), device=device)
        loss_count = 0
        last_log_time, last_log_tokens = time.perf_counter(), tokens_seen
        train_loss = math.nan
        val_loss = math.nan

        def elapsed() -> float:
            return train_seconds + setup_seconds + (time.perf_counter() - session_t0)

        def progress() -> float:
            p = step / total_steps if total_steps else 0.0
            if cfg.time_budget:
                p = max(p, elapsed() / cfg.time_budget)
            return min(p, 1.0)

        def final_eval_reserve() -> float:
            """Seconds to keep for the final evaluation and save under --time-budget."""
            rate = eval_rate
            if rate is None:  # no evaluation yet: forward-only runs ~3x the training rate
                if step - session_step0 < 5:
                    return END_RESERVE_S
                session_tokens = tokens_seen - session_tokens0
                rate = 3 * session_tokens / max(time.perf_counter() - session_t0, 1e-9)
            return len(val_all) / rate + END_RESERVE_S

        def snapshot(val: float | None = None) -> dict:
            return {
                "step": step,
                "epoch": epoch,
                "tokens_seen": tokens_seen,
                "train_loss": train_loss,
                "val_loss": val if val is not None else val_loss,
                "best_val_loss": best_val if best_val < math.inf else None,
                "best_step": best_step,
                "elapsed_s": round(elapsed(), 2),
                "parameters": model.num_parameters(),
                "device": str(device),
                "processes": ctx.world_size,
                "skipped_steps": skipped,
                "data": str(data.path.resolve()),
                "stop_reason": self.stop_reason,
            }

        def averaged_or_model() -> RecurrentLM:
            """The model that is evaluated, sampled and saved: the average once it runs."""
            return model if averaged is None else averaged.module

        def save(which: str, val: float | None = None) -> None:
            """Rank 0 writes; saving ``last`` is collective (every rank's streams and RNG)."""
            nonlocal last_save_time
            train_state = None
            if which == "last":
                last_save_time = time.perf_counter()
                hidden = [distributed.gather_streams(ctx, h) for h in _state_to_list(state)]
                rng = distributed.gather_objects(ctx, torch.get_rng_state())
                rng_cuda = None
                if device.type == "cuda":
                    rng_cuda = distributed.gather_objects(ctx, torch.cuda.get_rng_state(device))
                train_state = {
                    "step": step,
                    "epoch": epoch,
                    "index": index,
                    "tokens_seen": tokens_seen,
                    "bad_evals": bad_evals,
                    "best_val": best_val,
                    "best_step": best_step,
                    "marks_done": marks_done,
                    "eval_size": eval_size,
                    "skipped": skipped,
                    "train_seconds": elapsed(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "hidden": [h.cpu() for h in hidden],
                    "rng_torch": rng[0],
                    "rng_torch_ranks": rng,
                    "rng_cuda_ranks": rng_cuda,
                    "rng_python": random.getstate(),
                    "ema": None if averaged is None else averaged_state(model, averaged),
                }
            if ctx.is_main:
                save_checkpoint(
                    self.out_dir / which,
                    averaged_or_model(),
                    self.tokenizer,
                    self._saved_config(),
                    snapshot(val),
                    train_state,
                )
            if which == "last":
                distributed.barrier(ctx)

        def validate(tokens) -> float:
            nonlocal eval_rate
            t0 = time.perf_counter()
            # In the training precision: a bf16 evaluation takes half the time and moved the
            # loss of a 1x384 character model by 7e-6 nats (BENCHMARKS.md).
            scored = averaged_or_model()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                result = evaluate_tokens(scored, tokens, device, EVAL_STREAMS, EVAL_SEQ_LEN)
            eval_rate = max(result.tokens, 1) / max(time.perf_counter() - t0, 1e-9)
            return result.loss

        evaluated = [-1, 0]  # step and number of tokens of the last evaluation

        def evaluation(tokens, final: bool = False) -> None:
            """Rank 0 evaluates; every rank takes the same decisions from its result."""
            nonlocal best_val, bad_evals, val_loss, best_step
            if len(tokens) < 2 or evaluated == [step, len(tokens)]:
                return  # nothing to evaluate, or just done on the same data
            evaluated[:] = [step, len(tokens)]
            val_loss = distributed.from_main(ctx, validate(tokens) if ctx.is_main else 0.0, device)
            compared = val_loss
            if final and best_val < math.inf and eval_size is not None and eval_size < len(tokens):
                # The periodic evaluations read a prefix of the split, whose loss can be
                # lower or higher than the whole split's: the best is chosen on that prefix.
                prefix = tokens[:eval_size]
                compared = distributed.from_main(
                    ctx, validate(prefix) if ctx.is_main else 0.0, device
                )
            improved = compared < best_val - 1e-6
            if improved:
                best_val, bad_evals, best_step = compared, 0, step
            else:
                bad_evals += 1
            schedule.on_eval(improved)
            record = {
                "kind": "eval",
                "step": step,
                "epoch": epoch,
                "tokens": tokens_seen,
                "val_loss": val_loss,
                "val_ppl": math.exp(min(val_loss, 700)),
                "best": improved,
                "final": final,
                "elapsed": round(elapsed(), 2),
            }
            log.write(record)
            self.reporter.evaluation(record)
            if improved:
                save("best", val_loss)
            if cfg.sample_tokens and not final and ctx.is_main:
                self._print_sample(averaged_or_model())
            if cfg.patience and bad_evals >= cfg.patience and self.stop_reason is None:
                self.stop_reason = "patience"

        previous_signals = self._install_signals()
        try:
            while True:
                reason = self.stop_reason  # set by a signal or by patience
                if reason is None and total_steps is not None and step >= total_steps:
                    reason = "max_steps" if cfg.max_steps and step >= cfg.max_steps else "epochs"
                if (
                    reason is None
                    and ctx.is_main  # rank 0's clock decides for all
                    and cfg.time_budget
                    and elapsed() + final_eval_reserve() >= cfg.time_budget
                ):
                    reason = "time_budget"
                reason = distributed.agree_on_stop(ctx, reason, device)
                if reason is not None:
                    self.stop_reason = reason
                    break
                if index >= batches.batches_in_epoch(epoch):
                    epoch, index = epoch + 1, 0
                    state = model.init_state(local_batch, device)
                x_np, y_np = batches.get(epoch, index)
                x = torch.from_numpy(x_np).to(device, non_blocking=True)  # (B/world, T)
                y = torch.from_numpy(y_np).to(device, non_blocking=True)
                lr = schedule.lr(step, progress())
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss, state = net(x, state, y)  # mean nats over this process's B/world x T
                optimizer.zero_grad(set_to_none=True)
                nonfinite = distributed.any_rank(ctx, not torch.isfinite(loss).item(), device)
                if not nonfinite:
                    skips_in_a_row = 0
                    loss.backward()
                    if cfg.clip_value:
                        nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)
                    if cfg.clip_norm:
                        norm = nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
                        # Gradients are averaged over ranks already: every rank sees the same.
                        nonfinite = not torch.isfinite(norm).item()
                if nonfinite:
                    # Checked before every update, so no saved checkpoint holds NaN weights.
                    if cfg.on_nan == "stop":
                        raise GenseqError(
                            f"the training loss or its gradients became non-finite at step "
                            f"{step + 1}; lower --lr, set --clip-norm or use --on-nan skip "
                            "(the last good checkpoint is kept)"
                        )
                    # Skip the update, halve the learning rate, restart the streams' state.
                    optimizer.zero_grad(set_to_none=True)
                    skipped += 1
                    skips_in_a_row += 1
                    if skips_in_a_row > MAX_SKIPS_IN_A_ROW:
                        raise GenseqError(
                            f"the loss stayed non-finite for {skips_in_a_row} batches in a row "
                            f"at step {step}; lower --lr (the last good checkpoint is kept)"
                        )
                    schedule.scale *= 0.5
                    state = model.init_state(local_batch, device)
                    index += 1
                    self.reporter.message(
                        f"step {step}: non-finite loss, update skipped; learning rate halved"
                    )
                    continue
                optimizer.step()
                if cfg.ema and ctx.is_main and (averaged is not None or progress() >= EMA_START):
                    if averaged is None:
                        averaged = start_average(model, cfg.ema)
                    averaged.update_parameters(model)
                state = detach_state(state, torch.float32)  # bf16 out of autocast
                step += 1
                index += 1
                tokens_seen += x.numel() * ctx.world_size
                loss_sum += loss.detach()
                loss_count += 1
                if step % cfg.log_every == 0 or (total_steps and step == total_steps):
                    # The global mean loss; a device sync, once per interval.
                    train_loss = distributed.mean(ctx, loss_sum).item() / loss_count
                    if not math.isfinite(train_loss):
                        raise GenseqError(
                            f"the training loss became {train_loss} at step {step}; lower --lr, "
                            "set --clip-norm or use --on-nan skip (the last good checkpoint "
                            "is kept)"
                        )
                    loss_sum.zero_()
                    loss_count = 0
                    now = time.perf_counter()
                    tok_s = (tokens_seen - last_log_tokens) / max(now - last_log_time, 1e-9)
                    last_log_time, last_log_tokens = now, tokens_seen
                    record = {
                        "kind": "train",
                        "step": step,
                        "epoch": epoch,
                        "tokens": tokens_seen,
                        "loss": train_loss,
                        "lr": lr,
                        "tok_s": round(tok_s, 1),
                        "elapsed": round(elapsed(), 2),
                        "progress": round(progress(), 4),
                    }
                    log.write(record)
                    self.reporter.step(record)
                if cfg.eval_every:
                    due = step % cfg.eval_every == 0
                else:
                    due = progress() >= (marks_done + 1) / EVAL_MARKS
                    due = due and marks_done + 1 < EVAL_MARKS
                    if cfg.time_budget:  # rank 0's clock decides, for every rank
                        # No periodic evaluation when the final one is moments away.
                        ending = elapsed() + 2 * final_eval_reserve() >= cfg.time_budget
                        due = distributed.any_rank(ctx, ctx.is_main and due and not ending, device)
                if due:
                    marks_done = int(progress() * EVAL_MARKS)
                    if eval_size is None:  # fixed at the first evaluation, kept on resume
                        share = int(EVAL_SHARE * tokens_seen)
                        eval_size = min(EVAL_MAX_TOKENS, max(EVAL_MIN_TOKENS, share))
                    evaluation(val_all[:eval_size])
                    save("last")
                elif save_steps and step % save_steps == 0:
                    save("last")
                elif save_seconds and distributed.any_rank(
                    ctx,
                    ctx.is_main and time.perf_counter() - last_save_time >= save_seconds,
                    device,
                ):
                    save("last")
                self.step = step
                if self.on_step is not None:
                    self.on_step(self)
            # The end: a final evaluation on the whole validation split, then save.
            if self.stop_reason not in ("interrupted", "terminated"):
                evaluation(val_all, final=True)
            if len(val_all) < 2 and best_val == math.inf:
                save("best")
            save("last")
            digests = distributed.gather_objects(ctx, parameter_digest(model))
            if ctx.enabled:
                log.write(
                    {
                        "kind": "replicas",
                        "step": step,
                        "in_sync": len(set(digests)) == 1,
                        "digests": digests,
                    }
                )
        finally:
            for sig, handler in previous_signals:
                signal.signal(sig, handler)
            log.close()
            self.reporter.finish()
        if ctx.is_main:
            plot_losses(self.out_dir / "log.jsonl", self.out_dir / "loss.png")
        summary = snapshot()
        summary["val_loss"] = val_loss
        summary["replicas_in_sync"] = len(set(digests)) == 1
        return TrainResult(summary, self.out_dir)

    # -- helpers -------------------------------------------------------------------------------
    def _planned_steps(self, batches: StreamBatches) -> int | None:
        cfg = self.cfg
        steps = None
        if cfg.epochs:
            steps = sum(batches.batches_in_epoch(e) for e in range(cfg.epochs))
        if cfg.max_steps:
            steps = min(steps, cfg.max_steps) if steps else cfg.max_steps
        return steps

    def _saved_config(self) -> dict:
        return self.cfg.to_dict()

    def describe_plan(self, model: RecurrentLM, batches: StreamBatches, total: int | None) -> str:
        c = self.cfg
        stop = []
        if c.epochs:
            stop.append(f"{c.epochs} epoch(s)")
        if c.max_steps:
            stop.append(f"{c.max_steps:,} steps")
        if c.time_budget:
            stop.append(f"{c.time_budget:g} s budget")
        cutoffs = ",".join(map(str, c.adaptive_cutoffs or []))
        return (
            f"model: {c.num_layers}x{c.hidden_size} {c.cell.upper()}, embedding {c.embed_size}, "
            f"dropout {c.dropout}, "
            f"{f'weight drop {c.weight_drop}, ' if c.weight_drop else ''}"
            f"{'tied, ' if c.tie_weights else ''}"
            f"{f'adaptive softmax {cutoffs}, ' if cutoffs else ''}"
            f"{model.num_parameters():,} parameters on {self.device}"
            f"{' (bf16 autocast)' if c.precision == 'bf16' else ''}\n"
            f"data: {len(self.data.train):,} train / {len(self.data.val):,} val tokens "
            f"({self.data.level} level, vocabulary {self.data.vocab_size:,}); "
            f"batch {c.batch_size} x {c.seq_len}, {batches.batches_in_epoch(0):,} steps/epoch\n"
            f"schedule: {c.optimizer} lr {c.lr:g}, weight decay {c.weight_decay:g}, {c.schedule}, "
            f"warmup {c.warmup_steps}, "
            f"clip {c.clip_norm:g}"
            + (f", weight average {c.ema:g} from halfway" if c.ema else "")
            + f"; stop after {' or '.join(stop) or 'interrupt'}"
            + (f" ({total:,} steps)" if total else "")
        )

    def _print_sample(self, model: RecurrentLM) -> None:
        from genseq.generate import generate

        was_training = model.training
        model.eval()
        ckpt = Checkpoint(self.out_dir, {}, model, self.tokenizer)
        samples = generate(ckpt, "", max_new_tokens=self.cfg.sample_tokens, seed=0)
        model.train(was_training)
        self.reporter.message("sample: " + samples[0].text)

    def _truncate_log(self, step: int) -> None:
        """Drop log records written after the checkpoint being resumed from."""
        path = self.out_dir / "log.jsonl"
        if not path.exists():
            return
        kept = []
        for line in path.read_text("utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue
        atomic_write_text(path, "".join(k + "\n" for k in kept))


class _LogFile:
    """The run's JSONL log; a no-op on ranks other than 0."""

    def __init__(self, path: Path | None) -> None:
        self._file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def write(self, record: dict) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def parameter_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter's bytes: equal digests mean bit-identical replicas."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _to_tuple(value):
    """``random.setstate`` needs tuples; torch.save may round-trip them as lists."""
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value


def plot_losses(log_path: Path, png_path: Path) -> None:
    """Training and validation loss against tokens seen, as a PNG."""
    train, val = [], []
    for line in log_path.read_text("utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "train":
            train.append((record["tokens"], record["loss"]))
        elif record.get("kind") == "eval":
            val.append((record["tokens"], record["val_loss"]))
    if not train and not val:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train", linewidth=1)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation", linewidth=1.5)
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    from genseq.fileio import atomic_file

    with atomic_file(png_path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
