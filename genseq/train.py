"""The one training loop, for every level and domain.

Truncated BPTT over contiguous streams (``data.StreamBatches``): the recurrent state is carried
from one window to the next and detached, as char-rnn and word_language_model do. A model whose
``carries_state`` is False (``genseq.transformer.TransformerLM``) trains on independent windows:
the loop passes it no state. The loop
knows nothing about text or music; it reads token ids, writes checkpoints and reports to a
``progress.Reporter``. ``Trainer.run`` reads top to bottom as its phases; each policy (the
budget, evaluation and the best checkpoint, non-finite losses, stop signals, the run
directory) is its own module in ``genseq.training``. A run directory holds::

    best/  last/    checkpoints (last/ also holds train_state.pt for --resume)
    log.jsonl       one JSON object per log interval and per evaluation
    loss.png        training and validation loss curves

Resuming restores the weights, optimizer, schedule, RNG states, data position and hidden
state, so an interrupted and resumed run ends with the same parameters as an uninterrupted one
(step-planned runs; time-budgeted runs depend on the clock by design).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from genseq import distributed
from genseq.averaging import WeightAverage
from genseq.checkpoint import load_train_state, save_checkpoint, update_summary
from genseq.data import StreamBatches, TokenData
from genseq.device import configure_device, native_bf16, resolve_device
from genseq.errors import GenseqError, UsageError
from genseq.fileio import remove_stale_staging
from genseq.generate import preview
from genseq.model import build_model, detach_state
from genseq.plan import TrainConfig, plan
from genseq.progress import Reporter, SilentReporter
from genseq.schedule import Schedule
from genseq.training import build, evaluation, run_dir, run_guard
from genseq.training.clock import Clock
from genseq.training.nan_guard import NanGuard
from genseq.training.resume import resumed_config
from genseq.training.run_log import LogFile, LossMeter, plot_losses, truncate_log
from genseq.training.save_schedule import SaveSchedule
from genseq.training.signals import StopSignals
from genseq.training.state import TrainState, restore_streams, streams_to_save


@dataclass
class TrainResult:
    summary: dict
    out_dir: Path


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
        self.on_step = on_step
        self.stop_reason: str | None = None
        self.dist = distributed.context_from_env()
        self.device = distributed.setup(self.dist, resolve_device(cfg.device))
        configure_device(self.device)
        self.is_main = self.dist.is_main  # only rank 0 reports, logs and writes files
        self.reporter = reporter if reporter and self.is_main else SilentReporter()
        self.tokenizer = data.tokenizer()
        if self.tokenizer.vocab_size != data.vocab_size:
            raise GenseqError(f"{data.path}: tokenizer.json does not match meta.json")
        if len(data.train) < 2:
            raise GenseqError(f"{data.path}: the training split is empty")
        self.resume_from = run_dir.last_checkpoint(self.out_dir) if resume else None
        if self.resume_from is not None:
            say = self.reporter.message
            self.cfg = resumed_config(cfg, self.resume_from, data.path, self.device, say)
        else:
            self.cfg = self._planned_config(cfg)
        self.vectors = self._read_vectors() if self.resume_from is None else None
        self.frozen_rows: torch.Tensor | None = None  # --freeze-embeddings: the loaded rows
        self.state = TrainState()
        self.clock = Clock(self.cfg.time_budget, None, process_start or time.perf_counter(), 0.0)

    @property
    def step(self) -> int:
        return self.state.step

    def request_stop(self, reason: str = "interrupted") -> None:
        """Finish the current step, save, and return (Ctrl-C and SIGTERM call this)."""
        self.stop_reason = reason

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train, holding the run directory's lock (one process trains into it at a time)."""
        with run_guard.locked(self.out_dir, enabled=self.is_main):
            return self._run()

    def _run(self) -> TrainResult:
        # Set-up: the run directory, the model, optimizer, schedule and data order.
        self._prepare_run_dir()
        self._build()
        if self.resume_from is not None:
            self._restore()
        self._start()
        log = LogFile(self.out_dir / "log.jsonl" if self.is_main else None)
        self.log = log
        try:
            with StopSignals(self.request_stop, self.reporter.message):
                # The loop: one optimizer update per batch until a stop reason comes.
                while (reason := self._stop_due()) is None:
                    if self._train_step():
                        self._after_step()
                self.stop_reason = reason
                # The end: best/ settled on the whole validation split, then last/ saved.
                self._finish()
        finally:
            log.close()
            self.reporter.finish()
        if self.is_main:
            plot_losses(self.out_dir / "log.jsonl", self.out_dir / "loss.png")
        return TrainResult(self._summary(), self.out_dir)

    # -- set-up ----------------------------------------------------------------------------------
    def _planned_config(self, cfg: TrainConfig) -> TrainConfig:
        run_dir.check_fresh(self.out_dir)
        data = self.data
        return plan(
            cfg,
            len(data.train),
            data.vocab_size,
            data.level,
            self.device,
            self.dist.world_size,
            data.distinct_train_tokens,
            native_bf16(self.device),
        )

    def _read_vectors(self):
        """--embeddings: the vocabulary's rows of the vectors file, read before anything is
        written; their file, dimension and coverage go into the config (config.json)."""
        from genseq.embeddings import read_vectors

        cfg = self.cfg
        if not cfg.embeddings:
            return None
        if self.data.level != "word":
            raise UsageError(
                f"--embeddings loads word vectors: it needs word-level data, and "
                f"{self.data.path} is {self.data.level} level"
            )
        vocab = self.tokenizer.hf.get_vocab()
        vectors = read_vectors(Path(cfg.embeddings), vocab, bool(cfg.embeddings_ignore_case))
        cfg.embeddings_loaded = vectors.info()
        return vectors

    def _prepare_run_dir(self) -> None:
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_staging(self.out_dir)
        if self.cfg.batch_size % self.dist.world_size:
            raise UsageError(
                f"--batch-size {self.cfg.batch_size} must be a multiple of the "
                f"{self.dist.world_size} processes (it is the global batch, shared out among them)"
            )

    def _build(self) -> None:
        """The model, optimizer, schedule and batches, seeded; the RNG draws happen in this
        order in every run, which bit-exact resume relies on."""
        cfg, ctx = self.cfg, self.dist
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.model = build_model(build.model_config(cfg, self.data.vocab_size)).to(self.device)
        if self.vectors is not None:  # no RNG draw: a resumed run builds the model alike
            from genseq.embeddings import load_rows

            load_rows(self.model.embed, self.vectors)
            if cfg.freeze_embeddings:
                self.frozen_rows = torch.from_numpy(self.vectors.ids)
        self.optimizer = build.make_optimizer(self.model, cfg)
        self.batches = StreamBatches(
            self.data.train, cfg.batch_size, cfg.seq_len, cfg.seed, ctx.rank, ctx.world_size
        )
        self.local_batch = cfg.batch_size // ctx.world_size
        self.clock.total_steps = build.planned_steps(cfg, self.batches)
        if cfg.warmup_steps is None:
            total = self.clock.total_steps
            cfg.warmup_steps = min(100, max(1, total // 20)) if total else 100
        self.schedule = Schedule(cfg.schedule, cfg.lr, cfg.warmup_steps)
        self.hidden = self._fresh_state()
        self.average = WeightAverage(cfg.ema, keep=self.is_main)
        self.state.eval_size = cfg.eval_tokens
        self.nan_guard = NanGuard(cfg.on_nan)
        self.bf16 = cfg.precision == "bf16"  # autocast: bf16 products, fp32 weights and loss
        self.validator = evaluation.Validator(ctx, self.device, self.bf16, self.clock)
        if ctx.rank > 0:  # its own dropout masks; rank 0 keeps the one-process RNG stream
            torch.manual_seed(cfg.seed + ctx.rank)

    def _restore(self) -> None:
        """Continue from last/: weights, optimizer, schedule, counters, streams and RNG."""
        from safetensors.torch import load_model

        assert self.resume_from is not None
        saved = load_train_state(self.resume_from)
        ctx, cfg, model = self.dist, self.cfg, self.model
        load_model(model, str(self.resume_from / "model.safetensors"), device=str(self.device))
        self.average.resume(model, saved.get("ema"))  # weights: the average, when one ran
        build.load_optimizer_state(self.optimizer, saved["optimizer"], model)
        self.schedule.load_state_dict(saved["schedule"])
        self.state = TrainState.from_dict(saved)
        if cfg.freeze_embeddings:
            self.frozen_rows = saved.get("frozen_rows")
            if self.frozen_rows is None:
                raise GenseqError(f"{self.resume_from}: train_state.pt lacks the frozen rows")
        if cfg.eval_tokens:
            self.state.eval_size = cfg.eval_tokens
        self.clock.earlier_seconds = self.state.train_seconds
        self.hidden = restore_streams(ctx, saved, self.device, cfg.seed, self.state.step)
        if ctx.is_main:
            truncate_log(self.out_dir / "log.jsonl", self.state.step)
        self.reporter.message(
            f"resuming {self.out_dir} at step {self.state.step:,} (epoch {self.state.epoch})"
        )

    def _start(self) -> None:
        """Wrap the model for several processes, announce the plan, start the clocks."""
        self.model.flatten_parameters()
        self.model.train()
        if self.frozen_rows is not None:
            from genseq.embeddings import freeze_rows

            freeze_rows(self.model, self.optimizer, self.frozen_rows)
        self.net: nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        distributed.barrier(self.dist)  # the run directory exists, every rank is ready
        self.reporter.message(
            build.describe_plan(
                self.cfg, self.model, self.data, self.batches, self.device, self.clock.total_steps
            )
        )
        self.reporter.start(self.clock.total_steps, self.cfg.time_budget)
        s = self.state
        self.clock.start_session(s.step, s.tokens_seen)
        self.saves = SaveSchedule(self.cfg.save_every)
        self.loss_meter = LossMeter(self.device, s.tokens_seen)
        self.train_loss = self.val_loss = math.nan
        self.candidate_loss = math.inf  # best/'s loss on the whole split, once measured
        self.evaluated = (-1, 0)  # step and size of the last evaluation
        self.replicas_in_sync = True

    # -- the loop's phases ------------------------------------------------------------------------
    def _stop_due(self) -> str | None:
        """Why to stop before the next step, agreed by every process (rank 0's clock decides
        the budget for all)."""
        s, cfg, total = self.state, self.cfg, self.clock.total_steps
        reason = self.stop_reason  # a signal or patience
        if reason is None and total is not None and s.step >= total:
            reason = "max_steps" if cfg.max_steps and s.step >= cfg.max_steps else "epochs"
        if reason is None and self.is_main:
            if self.clock.out_of_time(s.step, s.tokens_seen, self._end_tokens()):
                reason = "time_budget"
        return distributed.agree_on_stop(self.dist, reason, self.device)

    def _train_step(self) -> bool:
        """One batch: forward, backward, update. False when a non-finite loss or gradient
        made it skip the update (--on-nan skip)."""
        s, ctx = self.state, self.dist
        if s.index >= self.batches.batches_in_epoch(s.epoch):
            s.epoch, s.index = s.epoch + 1, 0
            self.hidden = self._fresh_state()
        x_np, y_np = self.batches.get(s.epoch, s.index)
        x = torch.from_numpy(x_np).to(self.device, non_blocking=True)  # (B/world, T)
        y = torch.from_numpy(y_np).to(self.device, non_blocking=True)
        self.lr = self.schedule.lr(s.step, self.clock.progress(s.step))
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss, self.hidden = self.net(x, self.hidden, y)  # mean nats over B/world x T
        self.optimizer.zero_grad(set_to_none=True)
        if not self._backward(loss):
            self._skip_update()
            return False
        self.optimizer.step()
        self.nan_guard.updated()
        self.average.update(self.model, self.clock.progress(s.step))
        if self.hidden is not None:
            self.hidden = detach_state(self.hidden, torch.float32)  # bf16 out of autocast
        s.step += 1
        s.index += 1
        s.tokens_seen += x.numel() * ctx.world_size
        self.loss_meter.add(loss)
        return True

    def _fresh_state(self):
        """The streams' state at the start of an epoch: zeros for a recurrent model, None for
        one whose training windows are independent (a Transformer: ``carries_state``)."""
        if not self.model.carries_state:
            return None
        return self.model.init_state(self.local_batch, self.device)

    def _backward(self, loss: torch.Tensor) -> bool:
        """Gradients, clipped; False on every process where any process's loss, or the
        gradient norm, is not finite (gradients are averaged over processes already, so every
        process sees the same norm)."""
        if not distributed.any_rank(self.dist, not torch.isfinite(loss).item(), self.device):
            loss.backward()
            if self.cfg.clip_value:
                nn.utils.clip_grad_value_(self.model.parameters(), self.cfg.clip_value)
            if not self.cfg.clip_norm:
                return True
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_norm)
            return bool(torch.isfinite(norm).item())
        return False

    def _skip_update(self) -> None:
        """--on-nan skip: no update, half the learning rate, the streams' state restarted."""
        s = self.state
        self.optimizer.zero_grad(set_to_none=True)
        self.nan_guard.skip(s.step)
        s.skipped += 1
        s.index += 1
        self.schedule.scale *= 0.5
        self.hidden = self._fresh_state()
        self.reporter.message(
            f"step {s.step}: non-finite loss, update skipped; learning rate halved"
        )

    def _after_step(self) -> None:
        """Log, evaluate or save as due, then hand the step to ``on_step``."""
        s, total = self.state, self.clock.total_steps
        if s.step % self.cfg.log_every == 0 or (total and s.step == total):
            self._log_training()
        if self._evaluation_due():
            s.marks_done = int(self.clock.progress(s.step) * evaluation.EVAL_MARKS)
            if s.eval_size is None:  # fixed at the first evaluation, kept on resume
                s.eval_size = evaluation.prefix_size(s.tokens_seen)
            self._evaluate_periodic(self.data.val[: s.eval_size])
            self._save("last")
        elif self.saves.due(s.step, self.dist, self.device):
            self._save("last")
        if self.on_step is not None:
            self.on_step(self)

    def _log_training(self) -> None:
        """The mean training loss over all processes since the last record (a device sync,
        once per interval)."""
        s = self.state
        self.train_loss, tok_s = self.loss_meter.read(self.dist, s.tokens_seen)
        NanGuard.check_mean(self.train_loss, s.step)
        elapsed, progress = self.clock.elapsed(), self.clock.progress(s.step)
        record = s.train_record(self.train_loss, self.lr, tok_s, elapsed, progress)
        self.log.write(record)
        self.reporter.step(record)

    def _evaluation_due(self) -> bool:
        s, cfg = self.state, self.cfg
        due = evaluation.periodic_due(
            s.step, self.clock.progress(s.step), s.marks_done, cfg.eval_every
        )
        if cfg.eval_every or not cfg.time_budget:
            return due
        # Under a budget rank 0's clock decides for all; no evaluation when the end is near.
        near = self.clock.nearly_out(s.step, s.tokens_seen, self._end_tokens())
        return distributed.any_rank(self.dist, self.is_main and due and not near, self.device)

    # -- evaluation --------------------------------------------------------------------------------
    def _scored_model(self) -> nn.Module:
        return self.average.scored(self.model)  # type: ignore[return-value]

    def _evaluate_periodic(self, tokens) -> None:
        """Evaluate on the prefix, keep best/ and patience by it; every rank decides alike."""
        s = self.state
        if len(tokens) < 2 or self.evaluated == (s.step, len(tokens)):
            return  # nothing to evaluate, or just done on the same data
        self.evaluated = (s.step, len(tokens))
        self.val_loss = self.validator.loss(self._scored_model(), tokens)
        better = evaluation.improved(self.val_loss, s.best_val)
        if better:
            s.best_val, s.bad_evals, s.best_step = self.val_loss, 0, s.step
            self.candidate_loss = math.inf  # not yet measured on the whole split
        else:
            s.bad_evals += 1
        self.schedule.on_eval(better)
        self._record_evaluation(self.val_loss, better, final=False)
        if better:
            self._save("best", self.val_loss)
        if self.cfg.sample_tokens and self.is_main:
            text = preview(self._scored_model(), self.tokenizer, self.cfg.sample_tokens)
            self.reporter.message("sample: " + text)
        if self.cfg.patience and s.bad_evals >= self.cfg.patience and self.stop_reason is None:
            self.stop_reason = "patience"

    def _record_evaluation(self, loss: float, best: bool, final: bool) -> None:
        record = self.state.eval_record(loss, best, final, self.clock.elapsed())
        self.log.write(record)
        self.reporter.evaluation(record)

    def _end_tokens(self) -> int:
        s = self.state
        return evaluation.end_tokens(len(self.data.val), s.eval_size, s.best_val < math.inf)

    def _finish(self) -> None:
        """Settle best/ on the whole validation split, then save last/. An interrupted run
        saves at once instead."""
        val = self.data.val
        if self.stop_reason not in ("interrupted", "terminated") and len(val) >= 2:
            self._choose_best_on_whole_split(val)
        elif len(val) < 2 and self.state.best_val == math.inf:
            self._save("best")
        self._save("last")
        self.replicas_in_sync = self._check_replicas()

    def _choose_best_on_whole_split(self, val) -> None:
        """The final model and the best periodic checkpoint, both scored on the whole split:
        the better one is best/, so best/ is never worse than last/."""
        s = self.state
        if self.evaluated == (s.step, len(val)):  # the last periodic evaluation read it all
            self.candidate_loss = s.best_val
            return
        prefix_was_whole = s.eval_size is not None and s.eval_size >= len(val)
        candidate = math.inf
        if s.best_val < math.inf and s.best_step != s.step:
            if prefix_was_whole:
                candidate = s.best_val
            else:
                candidate = self.validator.checkpoint_loss(self.out_dir / "best", self.model, val)
        self.val_loss = self.validator.loss(self._scored_model(), val)
        choice = evaluation.FinalChoice(self.val_loss, candidate)
        self.candidate_loss = choice.best_loss
        self._record_evaluation(self.val_loss, choice.final_is_best, final=True)
        if choice.final_is_best:
            s.best_val, s.best_step = self.val_loss, s.step
            self._save("best", self.val_loss)
        elif self.is_main:  # best/ stays; its summary now gives its whole-split loss
            best = evaluation.best_summary(s, candidate, len(val))
            update_summary(self.out_dir / "best", val_loss=candidate, **best)

    def _check_replicas(self) -> bool:
        """Every process holds bit-identical weights (logged under torchrun)."""
        digests = distributed.gather_objects(self.dist, distributed.parameter_digest(self.model))
        in_sync = len(set(digests)) == 1
        if self.dist.enabled:
            self.log.write(
                {"kind": "replicas", "step": self.step, "in_sync": in_sync, "digests": digests}
            )
        return in_sync

    # -- saving ------------------------------------------------------------------------------------
    def _save(self, which: str, val: float | None = None) -> None:
        """Rank 0 writes; saving ``last`` is collective (every rank's streams and RNG)."""
        train_state = None
        if which == "last":
            self.saves.saved()
            train_state = self._resume_point()
        if self.is_main:
            save_checkpoint(
                self.out_dir / which,
                self._scored_model(),
                self.tokenizer,
                self.cfg.to_dict(),
                self._summary(val),
                train_state,
            )
        if which == "last":
            distributed.barrier(self.dist)

    def _resume_point(self) -> dict:
        """``train_state.pt``: what --resume needs besides the weights."""
        counters = replace(self.state, train_seconds=self.clock.elapsed())
        return {
            **counters.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            **streams_to_save(self.dist, self.hidden, self.device),
            "ema": self.average.to_save(self.model),
            **({"frozen_rows": self.frozen_rows} if self.frozen_rows is not None else {}),
        }

    def _summary(self, val: float | None = None) -> dict:
        """The run as a checkpoint's config.json and `genseq train --json` report it."""
        s = self.state
        return {
            **s.summary(),
            "train_loss": self.train_loss,
            "val_loss": val if val is not None else self.val_loss,
            **evaluation.best_summary(s, self.candidate_loss, len(self.data.val)),
            "elapsed_s": round(self.clock.elapsed(), 2),
            "parameters": self.model.num_parameters(),
            "device": str(self.device),
            "processes": self.dist.world_size,
            "data": str(self.data.path.resolve()),
            "stop_reason": self.stop_reason,
            "replicas_in_sync": self.replicas_in_sync,
        }
