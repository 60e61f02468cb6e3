"""The rules of a run directory: what may be trained into, resumed, or overwritten.

A run directory holds ``best/`` and ``last/`` checkpoints, ``log.jsonl`` and ``loss.png``, and,
when `genseq train` tokenized its sources itself, ``data/``.
"""

from __future__ import annotations

from pathlib import Path

from genseq.checkpoint import find_checkpoint
from genseq.errors import GenseqError, UsageError


def default_run_dir(source: str) -> Path:
    """``checkpoints/<source name>``: the first source's file or directory name."""
    name = Path(source.rstrip("/")).stem if source != "-" else "stdin"
    return Path("checkpoints") / (name or "run")


def holds_run(run_dir: Path) -> bool:
    return (run_dir / "last").exists() or (run_dir / "log.jsonl").exists()


def last_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a resumed run continues from (a crash mid-save is recovered)."""
    try:
        return find_checkpoint(Path(run_dir) / "last")
    except GenseqError:
        raise GenseqError(f"{run_dir}: no last/ checkpoint to resume from") from None


def check_fresh(run_dir: Path) -> None:
    """Refuse to train into a directory holding anything but a genseq data directory."""
    from genseq.data import is_data_dir

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise GenseqError(f"{run_dir} is a file; choose another -o")
    if holds_run(run_dir):
        raise GenseqError(
            f"{run_dir} already holds a training run; pass --resume to continue "
            "it, --overwrite to start again, or choose another -o"
        )
    if run_dir.is_dir():
        others = [
            p
            for p in run_dir.iterdir()
            if not (p.name == "data" and is_data_dir(p)) and not p.name.startswith(".")
        ]
        if others:
            raise GenseqError(f"{run_dir} exists and is not empty; choose another -o")


def check_overwritable(run_dir: Path) -> None:
    """--overwrite replaces a training run; a directory that holds none must be empty (or hold
    only a data directory), so that nothing else of the user's is ever set aside."""
    if not holds_run(run_dir) and run_dir.exists():
        check_fresh(run_dir)


def check_sources(sources: list[str], deleting: Path | None) -> None:
    """Fail early, and before ``--overwrite`` deletes ``deleting``, on sources that cannot
    work: missing paths, run directories given as data, data inside the run to delete."""
    from genseq.corpus import load_registry, missing_source_message

    registry = load_registry()
    for source in sources:
        path = Path(source)
        if source == "-" or source in registry and not path.exists():
            continue
        if not path.exists():
            raise GenseqError(missing_source_message(source))
        if path.is_dir() and ((path / "last").is_dir() or (path / "best").is_dir()):
            hint = f" (its data: {path / 'data'})" if (path / "data" / "meta.json").exists() else ""
            raise UsageError(
                f"{source} is a training run, not a corpus or data directory{hint}; "
                "to continue it, use --resume -o " + source
            )
        if deleting is not None and deleting.resolve() in (path.resolve(), *path.resolve().parents):
            raise UsageError(f"{source} is inside {deleting}, which --overwrite would delete")
