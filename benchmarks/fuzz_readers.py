"""The ABC and MIDI readers fuzzed for minutes: inputs tried, read and failed per reader.

The fuzzers of tests/test_fuzz_readers.py (``tests/reader_fuzz.py``) run longer, from a seed
of their own: real tunes and MIDI files mutated (tunes of the bundled ``folk-abc`` corpus,
MIDI files rendered from them, and Nottingham's ABC and MIDI files when --shared holds them),
each read as tokenize, eval and `music stats` read a document. A failure is any exception
other than genseq's own errors, an input slower than its time limit, or one asking for
gigabytes; each failing input is written to --failures with a note of what happened, and
``--replay FILE`` reads one again with its traceback. Exits 1 when an input failed.

    python benchmarks/fuzz_readers.py --minutes 5
    python benchmarks/fuzz_readers.py --replay fuzz-failures/abc-0001.bin
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

from _common import REPO, add_common_args, emit, markdown_table

sys.path.insert(0, str(REPO / "tests"))
import reader_fuzz as rf  # noqa: E402  (a test helper: the same fuzzers as the suite)

READERS = ("abc", "midi")
REPLAY_SECONDS = 600.0  # a replayed hang is shown as where it was after this long


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="genseq-fuzz-") as work:
        readers = rf.Readers(Path(work))
        if args.replay is not None:
            return replay(readers, args.replay)
        seeds = real_inputs(args)
        tallies = {}
        for name in READERS:
            make = _maker(name, seeds[name])
            read = readers.abc if name == "abc" else readers.midi
            seconds = args.minutes * 60 / len(READERS)
            print(f"fuzzing the {name} reader for {seconds:.0f} s...", file=sys.stderr)
            tallies[name] = rf.fuzz(name, read, make, args.seed, seconds=seconds)
    saved = save_failures(tallies, args.failures)
    report(tallies, seeds, saved, args)
    return 1 if saved else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="in all, shared equally")
    parser.add_argument("--seed", default="long", help="inputs are made from SEED:i")
    parser.add_argument(
        "--failures",
        type=Path,
        default=Path("fuzz-failures"),
        help="folder for failing inputs (default ./fuzz-failures)",
    )
    parser.add_argument("--replay", type=Path, help="read one saved input again and exit")
    add_common_args(parser)
    return parser.parse_args()


def real_inputs(args: argparse.Namespace) -> dict[str, list]:
    """The real files mutated: folk-abc tunes and MIDI rendered from them, plus Nottingham."""
    root = args.shared / "corpora" / "nottingham"
    folk, nottingham = rf.folk_tunes(), rf.nottingham_tunes(root)
    nottingham_midi = rf.nottingham_midi(root=root)
    if not nottingham or not nottingham_midi:
        print(f"{root} lacks Nottingham's ABC or MIDI files: fuzzing without", file=sys.stderr)
    midi = rf.rendered_midi(folk, 100) + nottingham_midi
    return {"abc": folk + nottingham, "midi": midi}


def _maker(name: str, seeds: list):
    if name == "abc":
        return lambda rng: rf.abc_input(seeds, rng)
    return lambda rng: rf.midi_input(seeds, rng)


def save_failures(tallies: dict[str, rf.Tally], folder: Path) -> int:
    """Each failing input as ``READER-N.bin`` with ``READER-N.txt`` saying what it did."""
    failures = [f for tally in tallies.values() for f in tally.failures]
    if failures:
        folder.mkdir(parents=True, exist_ok=True)
    for n, failure in enumerate(failures, 1):
        stem = folder / f"{failure.reader}-{n:04d}"
        stem.with_suffix(".bin").write_bytes(failure.data)
        stem.with_suffix(".txt").write_text(
            f"reader: {failure.reader}\ninput: {failure.input_id}\nkind: {failure.kind}\n"
            f"message: {failure.message}\nwhere: {failure.where}\n"
            f"replay: python benchmarks/fuzz_readers.py --replay {stem.with_suffix('.bin')}\n",
            encoding="utf-8",
        )
    return len(failures)


def replay(readers: rf.Readers, path: Path) -> int:
    """Read a saved input with the reader its name starts with; show any traceback."""
    name = path.name.split("-")[0]
    if name not in READERS:
        sys.exit(f"{path.name}: the name should start with one of {', '.join(READERS)}")
    read = readers.abc if name == "abc" else readers.midi
    start = time.perf_counter()
    try:
        with rf.memory_limit(), rf.time_limit(REPLAY_SECONDS):
            outcome = "ends well, " + ("read" if read(path.read_bytes()) else "nothing read")
    except rf.EXPECTED as exc:
        outcome = f"ends well: {type(exc).__name__}: {exc}"
    except (Exception, rf.InputTimeout):
        traceback.print_exc()
        return 1
    print(f"{outcome} ({time.perf_counter() - start:.2f} s)")
    return 0


def report(tallies: dict[str, rf.Tally], seeds: dict[str, list], saved: int, args) -> None:
    rows = [
        (
            name,
            f"{len(seeds[name]):,}",
            f"{t.tried:,}",
            f"{t.readable:,} ({t.readable / max(t.tried, 1):.0%})",
            f"{t.tried / max(t.seconds, 1e-9):.1f}",
            len(t.failures),
        )
        for name, t in tallies.items()
    ]
    table = markdown_table(
        [
            "reader",
            "real inputs",
            "inputs tried",
            "read (some tune, or notes)",
            "inputs/s",
            "failures",
        ],
        rows,
    )
    notes = f"Failing inputs saved in {args.failures}/." if saved else "No failures."
    emit("The ABC and MIDI readers fuzzed", table, args, notes)


if __name__ == "__main__":
    sys.exit(main())
