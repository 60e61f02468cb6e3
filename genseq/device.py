"""``--device auto|cpu|cuda|cuda:N|mps``: resolve once, never fall back silently; and how many
CPU threads to compute with.

Threads. PyTorch starts one compute thread per core in its affinity mask; it does not see a
container's CPU quota, nor other processes busy on those cores. Its parallel regions end at a
barrier, so a thread that shares its core with a busy process holds the others back at every
region: beside one busy process on two cores, 400 steps of a small LSTM took 7.0 s with two
threads and 3.9 s with one. ``configure_threads`` therefore uses the cores this process
may run on (affinity, capped by a cgroup v2 ``cpu.max`` or v1 CFS quota) less those that other
processes keep busy, measured over a moment at start. This is GNU OpenMP's ``OMP_DYNAMIC``
rule (cores less the load) with a current reading instead of the 15-minute load average.
``OMP_NUM_THREADS`` (or ``MKL_NUM_THREADS``) set by the user wins, and fixes the count, and so
the rounding of the arithmetic, from run to run.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

import torch

from genseq.errors import UsageError


def resolve_device(spec: str | None = "auto") -> torch.device:
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError(f"--device {spec}: MPS is not available here; use --device cpu")
    elif device.type != "cpu":
        raise UsageError(f"--device {spec!r}: use auto, cpu, cuda, cuda:N or mps")
    return device


def configure_device(device: torch.device) -> None:
    """Fast, numerically safe defaults: TF32 matmuls and cuDNN autotuning on CUDA; CPU threads
    for the cores this process has to itself (``configure_threads``)."""
    configure_threads()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def native_bf16(device: torch.device) -> bool:
    """Whether this is a CPU that multiplies bfloat16 in hardware (AVX512-BF16 or AMX): only
    there does bf16 autocast make training faster (1.3-1.6x, BENCHMARKS.md). oneDNN runs bf16
    on any AVX-512 CPU, emulated, so its own "bf16 supported" flag is not the test."""
    if device.type != "cpu":
        return False
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # a user's thread count
PROBE_SECONDS = 0.1  # how long the other processes' use of the cores is measured at start


@functools.cache
def configure_threads() -> int:
    """Set torch's compute threads to the cores free for this process (once per process), unless
    the user set a thread count; the count in use."""
    if not any(os.environ.get(name, "").strip() for name in THREAD_VARIABLES):
        cpus = affinity()
        threads = choose_threads(allowed_cores(cpus), len(cpus), busy_cores(cpus))
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def choose_threads(allowed: int, cpus: int, busy: float) -> int:
    """One thread per core that is allowed and not kept busy by other processes (to the nearest
    whole core, half a core up), at least one. ``busy`` counts on the ``cpus`` of the affinity
    mask; ``allowed`` may be fewer, under a quota."""
    return max(1, min(allowed, math.floor(cpus - busy + 0.5)))


def affinity() -> set[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def allowed_cores(cpus: set[int], root: Path = Path("/")) -> int:
    """How many cores' worth of time this process may use: its affinity mask, capped by its
    cgroup's CPU quota rounded up (1.5 CPUs allow two threads, as the JVM and loky count)."""
    quota = cpu_quota(root)
    limit = len(cpus) if quota is None else min(len(cpus), math.ceil(quota))
    return max(1, limit)


def cpu_quota(root: Path = Path("/")) -> float | None:
    """The tightest CPU quota, in CPUs, over this process's cgroup and its ancestors (cgroup v2
    ``cpu.max``, else v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``); None without one."""
    try:
        memberships = (root / "proc/self/cgroup").read_text()
    except OSError:
        return None
    quotas = [q for d in _cgroup_cpu_dirs(memberships, root) if (q := _dir_quota(d)) is not None]
    return min(quotas, default=None)


def _cgroup_cpu_dirs(memberships: str, root: Path) -> list[Path]:
    """The cgroup directories that may hold this process's CPU limits: its own cgroup and each
    ancestor up to the mount point, for the v2 hierarchy and a v1 ``cpu`` hierarchy. Inside a
    container the recorded path may not exist under the mount (the mount is the container's
    own cgroup); the walk then reaches the mount point itself."""
    dirs = []
    for line in memberships.splitlines():
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if number == "0" and controllers == "":
            mounts = [root / "sys/fs/cgroup"]
        elif "cpu" in controllers.split(","):
            base = root / "sys/fs/cgroup"
            mounts = [base / controllers, base / "cpu", base / "cpu,cpuacct"]
        else:
            continue
        mount = next((m for m in mounts if m.is_dir()), None)
        if mount is not None:
            parts = [p for p in path.strip().split("/") if p and p not in (".", "..")]
            dirs += [mount.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return dirs


def _dir_quota(directory: Path) -> float | None:
    """The CPU quota set in one cgroup directory, in CPUs; None when unlimited or unreadable."""
    try:
        if (directory / "cpu.max").is_file():
            quota, period = (directory / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def busy_cores(cpus: set[int], seconds: float = PROBE_SECONDS) -> float:
    """How many of ``cpus`` other processes keep busy: the busy share of their time in
    ``/proc/stat`` over ``seconds``, less this process's own use; 0 where it cannot be read."""
    before, mine_before = _cpu_ticks(cpus), _own_cpu_seconds()
    time.sleep(seconds)
    after, mine_after = _cpu_ticks(cpus), _own_cpu_seconds()
    if before is None or after is None:
        return 0.0
    busy, total = after[0] - before[0], after[1] - before[1]
    if total <= 0:
        return 0.0
    elapsed = total / len(cpus) / _ticks_per_second()
    mine = (mine_after - mine_before) / elapsed if elapsed > 0 else 0.0
    return max(0.0, busy / total * len(cpus) - mine)


def _cpu_ticks(cpus: Iterable[int]) -> tuple[int, int] | None:
    try:
        return cpu_ticks((Path("/proc/stat")).read_text(), cpus)
    except OSError:
        return None


def cpu_ticks(stat: str, cpus: Iterable[int]) -> tuple[int, int] | None:
    """(busy, total) clock ticks of ``cpus`` in ``/proc/stat``'s text, or None when a CPU is
    missing. Idle and I/O wait are not busy; steal (a hypervisor's other guests) is neither."""
    wanted = {f"cpu{c}" for c in cpus}
    busy = total = 0
    found = set()
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] in wanted:
            user, nice, system, idle, iowait, irq, softirq = map(int, fields[1:8])
            working = user + nice + system + irq + softirq
            busy += working
            total += working + idle + iowait
            found.add(fields[0])
    return (busy, total) if found == wanted else None


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _ticks_per_second() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100
