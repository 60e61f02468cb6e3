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
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from genseq import __version__
from genseq.errors import GenseqError, brief, shown
from genseq.fileio import atomic_write_text, replace_dir, resolve_dir, staging_dir
from genseq.jsonable import jsonable
from genseq.model import ModelConfig, RecurrentLM, build_model
from genseq.tokenization import LEVELS, Tokenizer
from genseq.tokenizer_kinds import load_checked

CHECKPOINT_FORMAT = "genseq-checkpoint"
CHECKPOINT_SCHEMA = 2
# Schema 1 checkpoints could predate these settings and left them unset; what unset meant then:
SCHEMA_1_DEFAULTS = {"ema": 0.0, "weight_drop": 0.0, "precision": "fp32"}
SECTIONS = {"model": True, "tokenizer": True, "train": False, "summary": False}  # required?
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


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
    return brief(str(exc)) or type(exc).__name__


def _not_saved(target: Path, cause: str) -> GenseqError:
    kept = "; the previous one is kept" if resolve_dir(target).exists() else ""
    return GenseqError(f"{target}: checkpoint not saved ({cause}){kept}")


def update_summary(ckpt_dir: Path, **fields) -> None:
    """Replace fields of a checkpoint's training summary (config.json, written atomically)."""
    config = read_config(ckpt_dir)
    config["summary"] = {**config.get("summary", {}), **fields}
    atomic_write_text(ckpt_dir / "config.json", json.dumps(jsonable(config), indent=2))


def resolve_checkpoint(arg: str | Path) -> Path:
    """Where a CHECKPOINT argument points, the one rule of ``sample``, ``info`` and ``eval``:
    a path that exists is that path (so a run of your own named ``folk-tunes`` wins over the
    shipped model), as is anything written as a path (``runs/x``, ``./x``), which may then
    not exist; a bare name is a shipped model, its installed files checked against the
    registry's checksums; a bare name that is neither says which names are shipped."""
    text = str(arg)
    if os.path.lexists(text) or os.sep in text or "/" in text or text.startswith((".", "~")):
        return Path(arg)
    from genseq.shipped import shipped_models

    models = shipped_models()
    if text in models:
        return models[text].verified()
    raise GenseqError(
        f"{text}: no such checkpoint, and no shipped model of that name "
        f"(shipped: {', '.join(models) or 'none'}; see `genseq models list`)"
    )


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
    except (OSError, ValueError, RecursionError):  # ValueError: not JSON, not UTF-8, or a
        # number of more digits than Python converts
        raise GenseqError(f"{config_path}: not a readable genseq checkpoint config") from None
    if not isinstance(config, dict) or config.get("format") != CHECKPOINT_FORMAT:
        raise GenseqError(f"{ckpt_dir}: config.json is not from a genseq checkpoint")
    schema = config.get("schema", 0)
    if isinstance(schema, bool) or not isinstance(schema, int):
        raise GenseqError(f"{config_path}: schema must be an integer, not {shown(schema)}")
    if schema > CHECKPOINT_SCHEMA:
        raise GenseqError(f"{ckpt_dir}: written by a newer genseq (schema {shown(schema)})")
    for section, required in SECTIONS.items():
        value = config.get(section)
        if not isinstance(value, dict) and (required or value is not None):
            raise GenseqError(f"{config_path}: {section!r} must be an object")
    return migrate(config)


def migrate(config: dict) -> dict:
    """A checkpoint config in the current schema: schema 2 writes every training setting.
    A config from before Transformers (no ``arch``) is a recurrent model's; one from before
    ``--attention`` has none (0)."""
    for section in ("model", "train"):
        if isinstance(config.get(section), dict):
            config[section].setdefault("arch", "rnn")
    if isinstance(config.get("model"), dict):
        config["model"].setdefault("attention", 0)
    if config.get("schema", 1) < 2:
        train = config.get("train")
        if isinstance(train, dict):
            for name, value in SCHEMA_1_DEFAULTS.items():
                if train.get(name) is None:
                    train[name] = value
        config["schema"] = 2
    return config


@dataclass
class CheckpointContents:
    """What a checkpoint's files say, checked against each other; no tensor read yet."""

    path: Path
    config: dict
    model_config: ModelConfig
    tokenizer: Tokenizer
    parameters: int  # counted from the weights file's header

    @property
    def weights(self) -> Path:
        return self.path / "model.safetensors"


def inspect_checkpoint(path: str | Path) -> CheckpointContents:
    """A checkpoint checked at the door, without building the model or reading a tensor:
    config values inside bounds, the tokenizer written at the level the config records and
    with the model's vocabulary, and every tensor in the weights file's header of the shape
    the config implies (a 16384-wide config over a 166 KB file is refused in milliseconds,
    where building the model first would take gigabytes). ``path`` is a CHECKPOINT argument:
    a run or checkpoint directory, or a shipped model's name (``resolve_checkpoint``)."""
    ckpt_dir = find_checkpoint(resolve_checkpoint(path))
    config = read_config(ckpt_dir)
    model_config = _model_config(ckpt_dir, config["model"])
    tokenizer = _tokenizer(ckpt_dir, config["tokenizer"], model_config)
    parameters = _check_weight_shapes(ckpt_dir / "model.safetensors", model_config)
    return CheckpointContents(ckpt_dir, config, model_config, tokenizer, parameters)


def _model_config(ckpt_dir: Path, section: dict) -> ModelConfig:
    try:
        return ModelConfig.from_dict(section)
    except (TypeError, ValueError, OverflowError) as exc:
        raise GenseqError(
            f"{ckpt_dir}: config.json describes no valid model ({_first_line(exc)})"
        ) from None


def _tokenizer(ckpt_dir: Path, section: dict, model_config: ModelConfig) -> Tokenizer:
    level = section.get("level")
    if not isinstance(level, str) or level not in LEVELS:
        raise GenseqError(f"{ckpt_dir}: config.json records no known level ({shown(level)})")
    path = ckpt_dir / "tokenizer.json"
    return load_checked(path, level, model_config.vocab_size, "config.json")


def _check_weight_shapes(weights: Path, model_config: ModelConfig) -> int:
    """The weights file's parameter count, once its header names exactly the tensors, shapes
    and (floating point) dtypes the config implies."""
    found = _header(weights)
    expected = model_config.weight_shapes()
    for name, shape in expected.items():
        if name not in found:
            raise GenseqError(f"{weights}: no {name}, which config.json's model has")
        if found[name][0] != shape:
            raise GenseqError(
                f"{weights}: {name} is {_dims(found[name][0])} but config.json's model "
                f"has {_dims(shape)}"
            )
        if found[name][1] not in FLOAT_DTYPES:
            raise GenseqError(f"{weights}: {name} holds {found[name][1]}, not weights")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise GenseqError(f"{weights}: holds {extra[0]}, which config.json's model has not")
    return model_config.parameter_count()


def _header(weights: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each tensor's shape and dtype, from the header alone (no tensor is read)."""
    from safetensors import SafetensorError, safe_open

    if not weights.is_file():
        raise GenseqError(f"{weights.parent}: model.safetensors is missing")
    try:
        with safe_open(str(weights), framework="pt") as f:
            slices = {name: f.get_slice(name) for name in f.keys()}  # noqa: SIM118
            return {k: (tuple(s.get_shape()), s.get_dtype()) for k, s in slices.items()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise GenseqError(f"{weights}: unreadable weights ({_first_line(exc)})") from None


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "a scalar"


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Load a checkpoint for sampling or evaluation; never executes code from it, and
    builds the model only once ``inspect_checkpoint`` found its files consistent."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    found = inspect_checkpoint(path)
    try:
        model = build_model(found.model_config)
    except RuntimeError as exc:  # an allocation the machine cannot make
        raise GenseqError(f"{found.path}: cannot build the model ({_first_line(exc)})") from None
    try:
        load_model(model, str(found.weights), device="cpu")
    except (SafetensorError, RuntimeError, OSError, ValueError) as exc:
        raise GenseqError(
            f"{found.weights}: unreadable or mismatched weights ({_first_line(exc)})"
        ) from None
    _check_finite(model, found.weights)
    model.to(device)
    model.flatten_parameters()
    model.eval()
    return Checkpoint(found.path, found.config, model, found.tokenizer)


def _check_finite(model: RecurrentLM, weights: Path) -> None:
    """A NaN or infinite weight makes every prediction NaN, which no sampler can draw from."""
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param).all()):
            raise GenseqError(f"{weights}: {name} holds NaN or infinite values")


def load_train_state(ckpt_dir: Path) -> dict:
    path = ckpt_dir / "train_state.pt"
    if not path.is_file():
        raise GenseqError(f"{ckpt_dir}: no train_state.pt to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file or foreign pickle content
        raise GenseqError(f"{path}: cannot be resumed from ({type(exc).__name__})") from None
