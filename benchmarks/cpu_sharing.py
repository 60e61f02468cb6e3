"""Training beside a busy process: how much a thread policy loses when another process spins.

    python benchmarks/cpu_sharing.py [--steps 400 --rounds 3] [--policies genseq,one,torch]
                                     [--no-record]

Each measurement is a fresh process that sets its threads by one policy, then times
``--steps`` training steps of a small character LSTM (genseq's ``RecurrentLM`` and optimizer,
the loop body of benchmarks/train_throughput.py; 1x256, embedding 64, batch 32, sequence 64,
vocabulary 65 by default). It runs alone, and beside one busy process: a pure-Python spin loop
started a moment before it and stopped after it. Policies:

- ``genseq``: ``genseq.device.configure_device``, what `genseq train` does (the cores allowed
  by affinity and quota, less those other processes keep busy at start);
- ``one``: ``OMP_NUM_THREADS=1`` (the user's setting wins over the policy);
- ``torch``: PyTorch's own default, one thread per core in the affinity mask.

Policies and conditions alternate within each round, so drift hits all alike; the table gives
medians. The busy process takes one core, its share ``1/allowed`` of the cores; a policy meets
the goal when its run beside it is no slower than ``allowed / (allowed - 1)`` times the fastest
run alone of any policy (2x on two cores). On one core there is nothing to share out and no
goal is checked. "Alone" means beside no other busy process: run it on an otherwise quiet
machine (the notes give the load average before the runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import add_common_args, emit, markdown_table

POLICIES = ("genseq", "one", "torch")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
SPIN = "while True:\n    pass\n"
SPIN_SETTLE_S = 0.3  # the busy process runs this long before the measured one starts
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "hypervisor")


def child(args: argparse.Namespace) -> None:
    """One measurement: set threads by ``args.child``'s policy, time the steps, print JSON."""
    import torch
    from train_throughput import genseq_step

    from genseq.device import configure_device

    if args.child != "torch":
        configure_device(torch.device("cpu"))
    _, step, _ = genseq_step(args)
    x = torch.randint(args.vocab, (args.batch, args.seq))
    y = torch.randint(args.vocab, (args.batch, args.seq))
    for _ in range(3):  # warm up: the first steps allocate and pick kernels
        step(x, y)
    start = time.perf_counter()
    for _ in range(args.steps):
        step(x, y)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads()}))


def child_env(policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    if policy == "one":
        env["OMP_NUM_THREADS"] = "1"
    return env


def measure(policy: str, busy: bool, args: argparse.Namespace) -> dict:
    """One child run of ``policy``, beside a spinning process when ``busy``."""
    cmd = [sys.executable, __file__, "--child", policy, *model_flags(args)]
    spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
    try:
        if spinner is not None:
            time.sleep(SPIN_SETTLE_S)
        out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(policy))
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def model_flags(args: argparse.Namespace) -> list[str]:
    names = ("steps", "hidden", "layers", "embed", "batch", "seq", "vocab")
    return [f"--{name}={getattr(args, name)}" for name in names]


def allowed_cores() -> tuple[int, str]:
    """The cores genseq counts as allowed here, and how: affinity and quota."""
    from genseq.device import affinity, cpu_quota
    from genseq.device import allowed_cores as count

    cpus = affinity()
    quota = cpu_quota()
    how = f"affinity {len(cpus)}" + (f", quota {quota:g} CPUs" if quota is not None else "")
    return count(cpus), how


def cpu_line() -> str:
    """The CPU model and the instruction-set flags torch's kernels care about."""
    model, flags = "cpu", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "cpu":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    present = [f for f in CPU_FLAGS if f in flags]
    return f"{model}; flags: {' '.join(present) or 'none of ' + ', '.join(CPU_FLAGS)}"


def run_rounds(args: argparse.Namespace, policies: list[str]) -> dict[tuple[str, bool], list]:
    """Every policy alone and beside the busy process, in rotating order each round."""
    found: dict[tuple[str, bool], list] = {(p, b): [] for p in policies for b in (False, True)}
    for r in range(args.rounds):
        order = policies[r % len(policies) :] + policies[: r % len(policies)]
        for busy in (False, True) if r % 2 == 0 else (True, False):
            for policy in order:
                result = measure(policy, busy, args)
                found[policy, busy].append(result)
                where = "beside a busy process" if busy else "alone"
                print(
                    f"round {r + 1}: {policy:6} {where:22} {result['seconds']:.2f} s, "
                    f"{result['threads']} thread(s)",
                    file=sys.stderr,
                )
    return found


def table(found: dict[tuple[str, bool], list], policies: list[str], allowed: int) -> str:
    """Medians per policy; the goal is judged against the fastest run alone of any policy, the
    most the machine gives without the busy process."""
    limit = allowed / (allowed - 1) if allowed > 1 else None
    median = {key: statistics.median(r["seconds"] for r in runs) for key, runs in found.items()}
    best_alone = min(median[p, False] for p in policies)
    rows = []
    for policy in policies:
        t_alone, t_beside = median[policy, False], median[policy, True]
        loss = t_beside / best_alone
        meets = "" if limit is None else ("yes" if loss <= limit else "**no**")
        rows.append(
            [
                policy,
                _threads(found[policy, False]),
                f"{t_alone:.2f}",
                _threads(found[policy, True]),
                f"{t_beside:.2f}",
                f"{t_beside / t_alone:.2f}",
                f"{loss:.2f}",
                meets,
            ]
        )
    headers = ["policy", "threads alone", "alone s", "threads beside", "beside s"]
    headers += ["beside / alone", "beside / best alone"]
    headers.append(f"within {limit:.2f}x" if limit else "goal")
    return markdown_table(headers, rows)


def _threads(results: list[dict]) -> str:
    counts = sorted({r["threads"] for r in results})
    return "/".join(map(str, counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="timed training steps per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--policies", default=",".join(POLICIES), help="genseq, one, torch")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=65)
    parser.add_argument("--child", choices=POLICIES, help=argparse.SUPPRESS)
    add_common_args(parser, shared=False)
    args = parser.parse_args()
    args.dropout = 0.0  # genseq_step's model: no dropout, as in train_throughput.py
    if args.child:
        child(args)
        return
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown or not policies:
        parser.error(f"--policies: choose from {', '.join(POLICIES)}")
    allowed, how = allowed_cores()
    load_before = os.getloadavg()[0]
    found = run_rounds(args, policies)
    notes = (
        f"CPU: {cpu_line()}. Allowed cores: {allowed} ({how}); load average before the runs "
        f"{load_before:.2f}. Each run: {args.steps} steps of a {args.layers}x"
        f"{args.hidden} LSTM (embedding {args.embed}, batch {args.batch}, sequence "
        f"{args.seq}, vocabulary {args.vocab}) in a fresh process; medians of {args.rounds} "
        "alternating rounds. Beside: one pure-Python spin loop in another process."
    )
    title = "training beside a busy process (thread policies)"
    emit(title, table(found, policies, allowed), args, notes)


if __name__ == "__main__":
    main()
