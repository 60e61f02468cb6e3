"""Fuzz the checkpoint loader and the data-directory loader for minutes: the same mutations as
tests/test_door.py (tests/door_fuzz.py), drawn from seeded Randoms, alternating the loaders.

Prints how many inputs each fuzzer tried, how they ended (loaded, refused with one line, or
failure) and every distinct failure with the seed and mutations that reproduce it; exits 1 if
any failure was found. It records nothing in BENCHMARKS.md. A load that hangs is stopped after
``--hang-s`` by a stack dump of every thread (faulthandler), which names where it hung.

    python benchmarks/fuzz_loaders.py --minutes 10
    python benchmarks/fuzz_loaders.py --minutes 1 --seed 7      # another stream of inputs
"""

from __future__ import annotations

import argparse
import faulthandler
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import door_fuzz  # noqa: E402 (tests/ is on the path only from here)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to fuzz, in all")
    parser.add_argument("--seed", type=int, default=0, help="the first input's seed")
    parser.add_argument("--hang-s", type=float, default=120.0, help="a load this long is a hang")
    parser.add_argument("--show", type=int, default=10, help="distinct failures to print")
    return parser.parse_args(argv)


def fuzzers(bases: door_fuzz.Bases) -> dict:
    """Each fuzzer: the base inputs it damages, its mutations, and the loader it runs."""
    f = door_fuzz
    return {
        "checkpoint": (bases.checkpoints, f.mutate_checkpoint, f.load_checkpoint_fully),
        "data directory": (bases.data_dirs, f.mutate_data, f.open_data_fully),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="genseq-fuzz-"))
    print("building the base inputs (a tiny trained run and its data)...", file=sys.stderr)
    bases = door_fuzz.build_bases(work / "bases")
    targets = fuzzers(bases)
    counts: Counter = Counter()
    failures: dict[str, tuple[str, int, door_fuzz.Outcome]] = {}
    slowest = dict.fromkeys(targets, 0.0)
    deadline = time.monotonic() + 60 * args.minutes
    seed = args.seed
    while time.monotonic() < deadline:
        for name, (inputs, mutate, load) in targets.items():
            rng = random.Random(seed)
            faulthandler.dump_traceback_later(args.hang_s, exit=True)
            outcome = door_fuzz.try_once(
                rng, rng.choice(inputs), work / "w", mutate, load, bases.tokenizer_files
            )
            faulthandler.cancel_dump_traceback_later()
            counts[name, outcome.kind] += 1
            slowest[name] = max(slowest[name], outcome.seconds)
            if outcome.kind == "failure":
                key = f"{name}: {outcome.detail.strip().splitlines()[-1][:160]}"
                failures.setdefault(key, (name, seed, outcome))
        seed += 1
    report(targets, counts, failures, slowest, args)
    return 1 if failures else 0


def report(targets, counts: Counter, failures: dict, slowest: dict, args) -> None:
    print(f"fuzzed for {args.minutes:g} min, seeds {args.seed} and on")
    print(f"{'loader':<16}{'inputs':>9}{'loaded':>9}{'refused':>9}{'failures':>10}{'slowest':>12}")
    for name in targets:
        tried = sum(n for (who, _), n in counts.items() if who == name)
        row = [counts[name, kind] for kind in ("loaded", "refused", "failure")]
        slow = f"{1000 * slowest[name]:,.0f} ms"
        print(f"{name:<16}{tried:>9,}{row[0]:>9,}{row[1]:>9,}{row[2]:>10,}{slow:>12}")
    total = sum(n for (_, kind), n in counts.items() if kind == "failure")
    print(f"{total} failures, {len(failures)} distinct")
    for key, (_name, seed, outcome) in list(failures.items())[: args.show]:
        print(f"\n--- {key}\nseed {seed}; mutations: {outcome.mutations}\n{outcome.detail}")


if __name__ == "__main__":
    sys.exit(main())
