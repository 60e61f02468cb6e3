"""The models genseq ships: their registry (``checkpoints/models.toml``, installed with the
models' files as the package ``genseq.checkpoints``), where they are once installed, and the
checksums that tell a damaged install from a good one.

A shipped model is package data, so ``genseq sample folk-tunes`` works from any directory
after ``pip install``; ``genseq.checkpoint.resolve_checkpoint`` turns the name into its
directory. ``python -m genseq.shipped checkpoints/models.toml`` rewrites a registry's sizes
and checksums from the files beside it, after a shipped model's files are replaced.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from genseq.errors import GenseqError

REGISTRY = "models.toml"
REFRESH = "python -m genseq.shipped checkpoints/models.toml"  # the fix for a stale registry
FIELDS = ("description", "level", "trained_on", "license", "size", "sha256")


@dataclass(frozen=True)
class ShippedModel:
    """One model of ``models.toml`` and the directory its files are installed in."""

    name: str
    path: Path
    description: str
    level: str
    trained_on: str
    license: str
    size: int  # bytes of the files below
    sha256: dict[str, str]  # file name -> checksum; these files are the model

    def problem(self) -> str | None:
        """What is wrong with the installed files (one missing, or not the bytes shipped),
        or None when every file is the one the registry describes."""
        from genseq.corpus import sha256_file

        for filename, expected in self.sha256.items():
            file = self.path / filename
            if not file.is_file():
                return f"{filename} is missing"
            try:
                actual = sha256_file(file)
            except OSError as exc:
                return f"{filename} is unreadable ({exc.strerror or exc})"
            if actual != expected:
                return f"{filename} has sha256 {actual[:12]}..., not the {expected[:12]}... shipped"
        return None

    def verified(self) -> Path:
        """The model's directory, once its files are checked against the registry."""
        problem = self.problem()
        if problem is not None:
            raise GenseqError(
                f"shipped model {self.name} is damaged: {problem} (in {self.path}); reinstall "
                f"genseq, or after replacing its files in a clone run `{REFRESH}`"
            )
        return self.path


def models_root() -> Path:
    """The installed ``genseq.checkpoints`` directory (in a clone with an editable install:
    the repository's ``checkpoints/``). Tests point this elsewhere to damage a copy."""
    try:
        root = resources.files("genseq.checkpoints")
    except ModuleNotFoundError:  # an editable install made before the package existed
        raise GenseqError(
            "genseq's shipped models are not installed (genseq.checkpoints is missing); "
            "reinstall genseq (in a clone: pip install -e .)"
        ) from None
    if not isinstance(root, Path):
        raise GenseqError("genseq's shipped models need genseq installed as files, not zipped")
    return root


def shipped_models() -> dict[str, ShippedModel]:
    """The shipped models by name, in the registry's order."""
    import tomllib

    root = models_root()
    registry = root / REGISTRY
    try:
        raw = tomllib.loads(registry.read_text("utf-8"))
        return {
            name: ShippedModel(name=name, path=root / name, **{f: spec[f] for f in FIELDS})
            for name, spec in raw.items()
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:  # ValueError: TOMLDecodeError
        raise GenseqError(f"{registry}: damaged registry of shipped models ({exc})") from None


def refresh(registry: Path) -> list[str]:
    """Rewrite each model's ``size`` and ``sha256`` lines in ``registry`` from the files in
    the model directories beside it, keeping every other line (comments included) as it is.
    Returns one line per value changed."""
    import tomllib

    from genseq.corpus import sha256_file
    from genseq.fileio import atomic_write_text

    text = registry.read_text("utf-8")
    models = tomllib.loads(text)
    sums = {
        name: {f: sha256_file(registry.parent / name / f) for f in spec["sha256"]}
        for name, spec in models.items()
    }
    changes: list[str] = []
    section: list[str] = []
    lines = []
    for line in text.splitlines(keepends=True):
        header = re.fullmatch(r"\[([\w-]+)(?:\.(sha256))?\]\s*", line)
        if header:
            section = [header.group(1), header.group(2) or ""]
        name, table = section or ["", ""]
        size = re.fullmatch(r"size = (\d+)(\s*)", line)
        digest = re.fullmatch(r'"([^"]+)" = "([0-9a-f]*)"(\s*)', line)
        if size and name in sums and not table:
            new = sum((registry.parent / name / f).stat().st_size for f in sums[name])
            if int(size.group(1)) != new:
                changes.append(f"{name}: size {new}")
            line = f"size = {new}{size.group(2)}"
        elif digest and table == "sha256" and digest.group(1) in sums.get(name, {}):
            new = sums[name][digest.group(1)]
            if digest.group(2) != new:
                changes.append(f"{name}/{digest.group(1)}: sha256 {new}")
            line = f'"{digest.group(1)}" = "{new}"{digest.group(3)}'
        lines.append(line)
    atomic_write_text(registry, "".join(lines))
    return changes


def main(argv: list[str] | None = None) -> int:
    """``python -m genseq.shipped REGISTRY``: refresh a registry, print what changed."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m genseq.shipped checkpoints/models.toml", file=sys.stderr)
        return 2
    try:
        changes = refresh(Path(args[0]))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {args[0]}: cannot refresh ({exc})", file=sys.stderr)
        return 1
    print("\n".join(changes) if changes else "the registry already matches the files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
