"""--resume: the saved run's settings, of which only the stopping ones may change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import torch

from genseq.checkpoint import read_config
from genseq.device import native_bf16
from genseq.errors import GenseqError, UsageError
from genseq.plan import TrainConfig, check_precision

STOPPING_FIELDS = ("max_steps", "epochs", "time_budget", "patience", "save_every", "on_nan")
# Where and how the run computes, not what it computes: free to change on resume. bf16
# autocast keeps fp32 weights, so a run can switch precision and go on.
MACHINE_FIELDS = ("device", "sample_tokens", "precision")
ALWAYS_GIVEN = ("device", "sample_tokens")  # the command line always sets these


def merge_resumed(saved: TrainConfig, given: TrainConfig) -> TrainConfig:
    """``saved`` with the stopping and machine settings ``given`` sets; any other setting
    that differs from the saved run is a usage error (it would make another run)."""
    for field in fields(TrainConfig):
        name = field.name
        value, kept = getattr(given, name), getattr(saved, name)
        if name in ALWAYS_GIVEN or (name in STOPPING_FIELDS + MACHINE_FIELDS and value is not None):
            setattr(saved, name, value)
        elif value is not None and name != "seed" and value != kept:
            raise UsageError(
                f"--{name.replace('_', '-')} {value} differs from the run being resumed "
                f"({kept}); settings other than stopping ones cannot change"
            )
    return saved


def check_same_tokenizer(checkpoint: Path, data_dir: Path, run_dir: Path) -> None:
    try:
        same = (checkpoint / "tokenizer.json").read_text("utf-8") == (
            data_dir / "tokenizer.json"
        ).read_text("utf-8")
    except OSError:
        same = False
    if not same:
        raise GenseqError(
            f"{run_dir} was trained with another tokenizer than {data_dir}'s; "
            "resume on the data it was started on"
        )


def resumed_config(
    given: TrainConfig,
    last: Path,
    data_dir: Path,
    device: torch.device,
    say: Callable[[str], None],
) -> TrainConfig:
    """The settings to continue the run saved in ``last`` with, on ``data_dir``."""
    saved = read_config(last)
    check_same_tokenizer(last, data_dir, last.parent)
    cfg = merge_resumed(TrainConfig.from_dict(saved.get("train", {})), given)
    check_precision(cfg.precision, device, cfg.adaptive_cutoffs, cfg.arch)
    if cfg.precision == "bf16" and not native_bf16(device):
        say(
            "note: this run trains in bf16, which this CPU only emulates (slowly); "
            "resume with --precision fp32 to continue in fp32"
        )
    started_on = saved.get("summary", {}).get("data")
    if started_on not in (None, str(data_dir.resolve())):
        say(f"note: resuming on data {data_dir} (the run was started on {started_on})")
    return cfg
