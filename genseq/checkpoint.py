"""Checkpoint directories: everything needed to sample, and to resume training exactly.

A run directory (``genseq train -o RUN``) holds ``best/`` and ``last/`` checkpoints, the JSONL
training log and the loss curve. A checkpoint directory holds::

    model.safetensors   weights only (safetensors: loading never executes code); the weight
                        average once a run keeps one (genseq.averaging)
    config.json         format marker, model config, tokenizer level, training summary
    tokenizer.json      the Hugging Face tokenizers file
    train_state.pt      (last/ only) optimizer, schedule, RNG states, data position, hidden
                        state, the training weights under an average (``ema``); plain
                        tensors and numbers, loaded with weights_only=True

Each checkpoint is written into a staging directory beside its target and swapped in whole
(``fileio.replace_dir``), so a crash never leaves a half-written checkpoint in place of a good
one.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from genseq import __version__
from genseq.errors import GenseqError
from genseq.fileio import atomic_write_text, replace_dir, resolve_dir, staging_dir
from genseq.jsonable import jsonable
from genseq.model import ModelConfig, RecurrentLM
from genseq.tokenization import Tokenizer, load_tokenizer

CHECKPOINT_FORMAT = "genseq-checkpoint"
CHECKPOINT_SCHEMA = 2
# Schema 1 checkpoints could predate these settings and left them unset; what unset meant then:
SCHEMA_1_DEFAULTS = {"ema": 0.0, "weight_drop": 0.0, "precision": "fp32"}


@dataclass
class Checkpoint:
    path: Path
    config: dict
    model: RecurrentLM
    tokenizer: Tokenizer

    @property
    def level(self) -> str:
        return self.config["tokenizer"]["level"]


def save_checkpoint(
    target: Path,
    model: RecurrentLM,
    tokenizer: Tokenizer,
    train_config: dict,
    summary: dict,
    train_state: dict | None = None,
) -> None:
    """Write a checkpoint whole, or raise a GenseqError naming the cause (a full disk) and
    leave the previous checkpoint at ``target``, if any, as it was."""
    target = Path(target)
    try:
        staging = staging_dir(target)
    except OSError as exc:
        raise _not_saved(target, _os_cause(exc)) from None
    try:
        _write_weights(staging, model)
        config = {
            "format": CHECKPOINT_FORMAT,
            "schema": CHECKPOINT_SCHEMA,
            "genseq_version": __version__,
            "torch_version": torch.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": model.config.to_dict(),
            "tokenizer": {
                "level": tokenizer.level,
                "file": "tokenizer.json",
                "vocab_size": tokenizer.vocab_size,
            },
            "train": train_config,
            "summary": summary,
        }
        atomic_write_text(staging / "config.json", json.dumps(jsonable(config), indent=2))
        tokenizer.save(staging / "tokenizer.json")
        if train_state is not None:
            _write_train_state(staging, train_state)
        replace_dir(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _not_saved(target, _os_cause(exc)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_weights(staging: Path, model: RecurrentLM) -> None:
    """safetensors reports a failed write (a full disk) as its own error type."""
    from safetensors import SafetensorError
    from safetensors.torch import save_model

    try:
        save_model(model, str(staging / "model.safetensors"))
    except SafetensorError as exc:
        cause = _first_line(exc)
        io = re.search(r"I/O error: (.+?)(?: \(os error \d+\))?$", cause)
        raise _WriteFailed(f"model.safetensors: {io.group(1) if io else cause}") from None


def _write_train_state(staging: Path, train_state: dict) -> None:
    """torch.save reports a write the disk cut short as a RuntimeError (``unexpected pos``)
    with C++ frames after the first line."""
    try:
        torch.save(train_state, staging / "train_state.pt")
    except RuntimeError as exc:
        cause = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", _first_line(exc))
        if "unexpected pos" in cause:
            cause = f"the write stopped short ({cause}); is the disk full?"
        raise _WriteFailed(f"train_state.pt: {cause}") from None


class _WriteFailed(OSError):
    """A write failure a library reported in its own terms, as one line of text."""


def _os_cause(exc: OSError) -> str:
    if isinstance(exc, _WriteFailed):
        return str(exc)
    where = Path(exc.filename).name if exc.filename else ""
    what = exc.strerror or _first_line(exc)
    return f"{where}: {what}" if where else what


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _not_saved(target: Path, cause: str) -> GenseqError:
    kept = "; the previous one is kept" if resolve_dir(target).exists() else ""
    return GenseqError(f"{target}: checkpoint not saved ({cause}){kept}")


def update_summary(ckpt_dir: Path, **fields) -> None:
    """Replace fields of a checkpoint's training summary (config.json, written atomically)."""
    config = read_config(ckpt_dir)
    config["summary"] = {**config.get("summary", {}), **fields}
    atomic_write_text(ckpt_dir / "config.json", json.dumps(jsonable(config), indent=2))


def find_checkpoint(path: Path) -> Path:
    """The checkpoint directory for ``path``: itself, or a run directory's ``best``/``last``."""
    path = resolve_dir(Path(path))
    if (path / "config.json").is_file():
        return path
    for name in ("best", "last"):
        candidate = resolve_dir(path / name)
        if (candidate / "config.json").is_file():
            return candidate
    if not path.exists():
        raise GenseqError(f"{path}: no such checkpoint")
    raise GenseqError(f"{path}: not a genseq checkpoint (no config.json)")


def read_config(ckpt_dir: Path) -> dict:
    config_path = ckpt_dir / "config.json"
    try:
        config = json.loads(config_path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise GenseqError(f"{config_path}: not a readable genseq checkpoint config") from None
    if not isinstance(config, dict) or config.get("format") != CHECKPOINT_FORMAT:
        raise GenseqError(f"{ckpt_dir}: config.json is not from a genseq checkpoint")
    if config.get("schema", 0) > CHECKPOINT_SCHEMA:
        raise GenseqError(f"{ckpt_dir}: written by a newer genseq (schema {config['schema']})")
    return migrate(config)


def migrate(config: dict) -> dict:
    """A checkpoint config in the current schema: schema 2 writes every training setting."""
    if config.get("schema", 1) < 2:
        train = config.get("train")
        if isinstance(train, dict):
            for name, value in SCHEMA_1_DEFAULTS.items():
                if train.get(name) is None:
                    train[name] = value
        config["schema"] = 2
    return config


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Load a checkpoint for sampling or evaluation; never executes code from it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    ckpt_dir = find_checkpoint(Path(path))
    config = read_config(ckpt_dir)
    try:
        model_config = ModelConfig.from_dict(config["model"])
        level = config["tokenizer"]["level"]
    except (KeyError, TypeError, ValueError) as exc:
        raise GenseqError(f"{ckpt_dir}: config.json describes no valid model ({exc})") from None
    tokenizer = load_tokenizer(ckpt_dir / "tokenizer.json", level)
    if tokenizer.vocab_size != model_config.vocab_size:
        raise GenseqError(
            f"{ckpt_dir}: tokenizer has {tokenizer.vocab_size} tokens but the model "
            f"expects {model_config.vocab_size}"
        )
    try:
        model = RecurrentLM(model_config)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise GenseqError(f"{ckpt_dir}: config.json describes no valid model ({exc})") from None
    weights = ckpt_dir / "model.safetensors"
    if not weights.is_file():
        raise GenseqError(f"{ckpt_dir}: model.safetensors is missing")
    try:
        load_model(model, str(weights), device="cpu")
    except (SafetensorError, RuntimeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenseqError(f"{weights}: unreadable or mismatched weights ({first})") from None
    model.to(device)
    model.rnn.flatten_parameters()
    model.eval()
    return Checkpoint(ckpt_dir, config, model, tokenizer)


def load_train_state(ckpt_dir: Path) -> dict:
    path = ckpt_dir / "train_state.pt"
    if not path.is_file():
        raise GenseqError(f"{ckpt_dir}: no train_state.pt to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file or foreign pickle content
        raise GenseqError(f"{path}: cannot be resumed from ({type(exc).__name__})") from None
