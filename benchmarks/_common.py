"""What every benchmark script shares: paths, the machine line, tables and BENCHMARKS.md records.

Not a benchmark itself. Each script in this folder prints ONE table and, unless ``--no-record``,
inserts it with its exact command and the machine under a dated heading at the top of
BENCHMARKS.md (newest first, after the intro paragraph). Absolute times drift on the shared
2-core machines, so scripts compare genseq with an anchor measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared"
BENCHMARKS_MD = REPO / "BENCHMARKS.md"


# The CPU features that change what a matmul costs; the figures depend on which are present.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def machine() -> str:
    """CPU model, its speed-relevant flags, torch's threads and torch version:
    ``AMD EPYC (avx2 fma), 2 threads, torch 2.x``."""
    import torch

    cpu, flags = platform.processor() or "cpu", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("cpu", platform.processor()):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                present = set(line.split(":", 1)[1].split())
                flags = [f for f in SPEED_FLAGS if f in present]
    except OSError:
        pass
    shown = f" ({' '.join(flags)})" if flags else ""
    return f"{cpu}{shown}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def add_common_args(parser: argparse.ArgumentParser, shared: bool = True) -> None:
    """``--shared`` (the corpora and anchors, default ../shared) and ``--no-record``."""
    if shared:
        parser.add_argument(
            "--shared",
            type=Path,
            default=DEFAULT_SHARED,
            help="folder holding corpora/ and anchors.md (default: ../shared beside the repo)",
        )
    parser.add_argument(
        "--no-record", action="store_true", help="print only; do not write to BENCHMARKS.md"
    )


def require(path: Path, what: str = "the shared corpora") -> Path:
    """``path``, or exit with a clear message when it is absent (no shared folder here)."""
    if not path.exists():
        sys.exit(f"skipped: {path} is absent ({what} are needed; pass --shared DIR)")
    return path


def genseq_exe() -> str:
    """The venv's ``genseq`` console script, so runs time the whole process users start."""
    exe = Path(sys.executable).with_name("genseq")
    if not exe.exists():
        sys.exit(f"{exe} not found: install genseq in this interpreter's environment")
    return str(exe)


def command_line() -> str:
    """The command that ran this script, as a user would type it from the repo root."""
    script = os.path.relpath(sys.argv[0], REPO)
    return shlex.join(["python", script, *sys.argv[1:]])


@dataclass
class Run:
    wall_s: float
    peak_rss_mb: float  # the child's peak resident set (ru_maxrss of the waited-for child)
    stdout: str
    stderr: str


def run_timed(cmd: Sequence[str], env: dict | None = None) -> Run:
    """Run ``cmd`` to completion; its wall time and its own peak RSS.

    ``os.wait4`` returns the rusage of that one child (and its waited-for descendants), so the
    peak is this command's, not the maximum over every child so far, which
    ``getrusage(RUSAGE_CHILDREN)`` would give. Output goes through temporary files, so a
    chatty child cannot block on a full pipe.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{stderr.strip()[-2000:]}")
    return Run(wall, usage.ru_maxrss / 1024, stdout, stderr)


def self_peak_rss_mb() -> float:
    """This process's peak RSS so far (ru_maxrss, kilobytes on Linux), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def record(title: str, body: str, notes: str = "") -> None:
    """Insert ``body`` under a dated heading at the top of BENCHMARKS.md's entries.

    The entry names the exact command and the machine. It goes after the intro paragraph,
    before the first ``## `` heading, so the newest entry comes first.
    """
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    entry = f"## {stamp} — {title}\n\n`{command_line()}` on {machine()}.\n\n{body.strip()}\n"
    if notes:
        entry += f"\n{notes.strip()}\n"
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    at = text.find("\n## ")
    if at < 0:
        text = text.rstrip("\n") + "\n\n" + entry
    else:
        text = text[: at + 1] + entry + "\n" + text[at + 1 :]
    BENCHMARKS_MD.write_text(text, encoding="utf-8")
    print(f"recorded in {BENCHMARKS_MD.name}", file=sys.stderr)


def emit(title: str, table: str, args: argparse.Namespace, notes: str = "") -> None:
    """Print the command, machine and table (and notes); record them unless ``--no-record``."""
    print(f"`{command_line()}` on {machine()}.\n")
    print(table)
    if notes:
        print("\n" + notes.strip())
    if not getattr(args, "no_record", True):
        record(title, table, notes)
