"""CPU threads: the cores allowed (affinity, cgroup quotas read from fake cgroup trees), the
cores other processes keep busy, and the thread count chosen from them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import genseq.device as device
from genseq.device import (
    affinity,
    allowed_cores,
    busy_cores,
    choose_threads,
    configure_device,
    cpu_quota,
    cpu_ticks,
)

V2 = "0::{path}\n"
V1 = "12:cpu,cpuacct:{path}\n11:memory:{path}\n0::/\n"


def cgroup_tree(root: Path, memberships: str, files: dict[str, str]) -> Path:
    """A fake ``/proc/self/cgroup`` and ``/sys/fs/cgroup`` under ``root``."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(memberships)
    (root / "sys/fs/cgroup").mkdir(parents=True)
    for name, text in files.items():
        path = root / "sys/fs/cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# ---------------------------------------------------------------------------------------------
# quotas


@pytest.mark.parametrize(
    ("memberships", "files", "quota"),
    [
        (V2.format(path="/"), {"cpu.max": "max 100000\n"}, None),
        (V2.format(path="/"), {"cpu.max": "150000 100000\n"}, 1.5),
        # the process's own cgroup is unlimited, its parent is not
        (
            V2.format(path="/job/step"),
            {"job/cpu.max": "200000 100000\n", "job/step/cpu.max": "max 100000\n"},
            2.0,
        ),
        # the tightest level counts
        (
            V2.format(path="/job/step"),
            {"cpu.max": "400000 100000", "job/cpu.max": "800000 100000", "job/step/cpu.max": "max"},
            4.0,
        ),
        # a container: the recorded path is the host's, the mount is the container's own cgroup
        (V2.format(path="/kubepods/pod1/abc"), {"cpu.max": "300000 100000\n"}, 3.0),
        (V1.format(path="/"), {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                               "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, None),
        (V1.format(path="/docker/abc"), {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n",
                                         "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"},
         0.5),
        # v1 controllers mounted one per folder
        ("3:cpu:/\n", {"cpu/cpu.cfs_quota_us": "250000", "cpu/cpu.cfs_period_us": "100000"}, 2.5),
        # unreadable or odd contents are no limit, never an error
        (V2.format(path="/"), {"cpu.max": "lots\n"}, None),
        (V2.format(path="/"), {}, None),
        ("", {"cpu.max": "100000 100000"}, None),
    ],
)  # fmt: skip
def test_the_cpu_quota_is_read_from_the_cgroup_and_its_ancestors(
    tmp_path, memberships, files, quota
):
    assert cpu_quota(cgroup_tree(tmp_path, memberships, files)) == quota


def test_no_cgroup_file_means_no_quota(tmp_path):
    assert cpu_quota(tmp_path) is None


@pytest.mark.parametrize(
    ("cpus", "cpu_max", "allowed"),
    [
        (8, "max 100000", 8),
        (8, "150000 100000", 2),
        (8, "50000 100000", 1),
        (2, "1600000 100000", 2),
    ],
)
def test_allowed_cores_are_the_affinity_capped_by_the_quota_rounded_up(
    tmp_path, cpus, cpu_max, allowed
):
    root = cgroup_tree(tmp_path, V2.format(path="/"), {"cpu.max": cpu_max})
    assert allowed_cores(set(range(cpus)), root) == allowed


def test_the_affinity_mask_is_what_the_process_may_run_on():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no affinity masks here")
    whole = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(whole)})  # this thread only, and given back below
    try:
        assert affinity() == {min(whole)}
    finally:
        os.sched_setaffinity(0, whole)


# ---------------------------------------------------------------------------------------------
# busy cores

STAT = """cpu  300 0 100 600 0 0 0 0 0 0
cpu0 100 0 50 340 10 0 0 7 0 0
cpu1 200 0 50 250 0 0 0 0 0 0
cpu2 0 0 0 500 0 0 0 0 0 0
intr 1 2 3
"""


def test_cpu_ticks_add_up_the_wanted_cpus_only():
    assert cpu_ticks(STAT, {0}) == (150, 500)  # steal (7) is neither busy nor idle
    assert cpu_ticks(STAT, {1, 2}) == (250, 1000)
    assert cpu_ticks(STAT, {3}) is None  # a CPU the file does not list


def test_busy_cores_are_the_busy_share_less_this_process(monkeypatch):
    """Two CPUs, 100 ticks a second: half their ticks busy is one core, of which this process
    used 0.3 of a core."""
    readings = iter([(1000, 4000), (1100, 4200)])
    own = iter([5.0, 5.3])
    monkeypatch.setattr(device, "_cpu_ticks", lambda cpus: next(readings))
    monkeypatch.setattr(device, "_own_cpu_seconds", lambda: next(own))
    monkeypatch.setattr(device, "_ticks_per_second", lambda: 100)
    monkeypatch.setattr(device.time, "sleep", lambda s: None)
    assert busy_cores({0, 1}) == pytest.approx(0.7)


def test_busy_cores_are_zero_when_proc_stat_cannot_be_read(monkeypatch):
    monkeypatch.setattr(device, "_cpu_ticks", lambda cpus: None)
    assert busy_cores({0, 1}, seconds=0.0) == 0.0


def test_the_real_proc_stat_lists_every_allowed_cpu():
    if not Path("/proc/stat").is_file():
        pytest.skip("no /proc/stat here")
    assert cpu_ticks(Path("/proc/stat").read_text(), affinity()) is not None


def test_a_spinning_process_counts_as_a_busy_core():
    if not Path("/proc/stat").is_file():
        pytest.skip("no /proc/stat here")
    spinner = subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
    try:
        time.sleep(0.3)
        busy = busy_cores(affinity(), seconds=0.3)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy >= 0.6


# ---------------------------------------------------------------------------------------------
# the choice


@pytest.mark.parametrize(
    ("allowed", "cpus", "busy", "threads"),
    [
        (2, 2, 0.0, 2),
        (2, 2, 0.4, 2),  # a light neighbour: most of the core is still there
        (2, 2, 1.0, 1),  # one busy process on two cores: one thread
        (2, 2, 1.9, 1),  # never fewer than one
        (8, 8, 2.6, 5),
        (8, 8, 3.5, 5),  # half a core free counts
        (2, 64, 40.0, 2),  # a quota of two CPUs on a large, partly busy host
        (4, 64, 62.0, 2),  # ... and on a nearly full one
    ],
)
def test_threads_are_the_allowed_cores_not_kept_busy(allowed, cpus, busy, threads):
    assert choose_threads(allowed, cpus, busy) == threads


@pytest.fixture
def thread_calls(monkeypatch) -> list[int]:
    """``torch.set_num_threads`` calls, recorded instead of made; a fresh policy decision."""
    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    device.configure_threads.cache_clear()
    yield calls
    device.configure_threads.cache_clear()


def test_configure_device_gives_one_thread_per_free_core(monkeypatch, thread_calls):
    for name in device.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(device, "affinity", lambda: {0, 1, 2, 3})
    monkeypatch.setattr(device, "cpu_quota", lambda root=None: None)
    monkeypatch.setattr(device, "busy_cores", lambda cpus: 1.2)
    configure_device(torch.device("cpu"))
    assert thread_calls == [3]


@pytest.mark.parametrize("name", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_a_thread_count_the_user_set_wins(monkeypatch, thread_calls, name):
    monkeypatch.setenv(name, "3")
    monkeypatch.setattr(device, "busy_cores", lambda cpus: pytest.fail("measured load"))
    configure_device(torch.device("cpu"))
    assert thread_calls == []
