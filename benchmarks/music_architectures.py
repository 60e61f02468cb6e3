"""Folk tunes by architecture: the LSTM, the Transformer and the attention LSTM side by side.

    python benchmarks/music_architectures.py [--budget 300] [--samples 50] [--no-record]
    python benchmarks/music_architectures.py --model "LSTM=" --model "GRU=--cell gru"

The embedded default corpus (``folk-abc``) is tokenized once with `genseq tokenize`'s
defaults (the split `genseq train folk-abc` makes), then each model trains on it for the same
whole-command budget (``--budget``; 300 s is the 5 minutes a CPU run with no stop flag
plans), one after another, nothing else running. For each: nats per token and per tune on the
whole validation split (a tune ends at <eos>), and ``--samples`` tunes sampled as `genseq
sample` does by default (the grammar constraint and the folk form on), judged by programs
genseq did not write: abc2midi and abcm2ps (a tune is flagged on any error or warning but
abcm2ps's layout notes; benchmarks/abc_reference_tools.py's rule) and music21's parser,
beside genseq's own bar check.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import add_common_args, emit, genseq_exe, markdown_table
from abc_reference_tools import Tally, judge

MODELS = (
    "LSTM (the default)=",
    "Transformer=--arch transformer",
    "attention LSTM, 16 outputs=--attention 16",
)


def tokenize(tmp: Path) -> Path:
    data = tmp / "folk"
    subprocess.run([genseq_exe(), "tokenize", "folk-abc", "-o", str(data), "-q"], check=True)
    return data


def train(data: Path, run: Path, budget: float, flags: list[str]) -> float:
    cmd = [genseq_exe(), "train", str(data), "-o", str(run), "--time-budget", str(budget)]
    start = time.perf_counter()
    subprocess.run([*cmd, "--seed", "0", "-q", *flags], check=True)
    return time.perf_counter() - start


def held_out(run: Path, data: Path) -> dict:
    from genseq.checkpoint import load_checkpoint
    from genseq.data import open_data
    from genseq.evaluate import evaluate_tokens

    ckpt = load_checkpoint(run)
    val = np.asarray(open_data(data).val)
    tunes = int((val == ckpt.tokenizer.eos_id).sum()) - 1  # the first <eos> starts tune 1
    result = evaluate_tokens(ckpt.model, val)
    summary = ckpt.config["summary"]
    return {
        "params": summary["parameters"],
        "steps": summary["step"],
        "model": ckpt.model.describe(),
        "nats_per_token": result.loss,
        "nats_per_tune": result.nats / tunes,
        "tunes": tunes,
    }


def samples(run: Path, n: int, work: Path) -> dict:
    """``n`` tunes at `genseq sample`'s defaults, judged by the reference tools and music21."""
    import music21

    from genseq.checkpoint import load_checkpoint
    from genseq.music.abc_constraint import PartForm
    from genseq.music.bars import bar_report
    from genseq.music.tune_sampling import build_prompt, sample_tunes
    from genseq.sample import SamplingSettings

    ckpt = load_checkpoint(run)
    start = time.perf_counter()
    tunes = sample_tunes(
        ckpt, build_prompt(ckpt), SamplingSettings(), num_samples=n, seed=0, form=PartForm()
    )
    seconds = time.perf_counter() - start
    tally = Tally()
    judge(tunes, tally, work, None, run.name)
    parsed = 0
    for tune in tunes:
        try:
            music21.converter.parse(tune.abc, format="abc")
            parsed += 1
        except Exception:  # noqa: BLE001 - any music21 failure counts as unparsable
            pass
    return {
        "abc2midi": tally.abc2midi,
        "abcm2ps": tally.abcm2ps,
        "parsed": parsed,
        "clean": sum(bar_report(t.tokens).clean for t in tunes),
        "ended": sum(t.finish_reason == "eos" for t in tunes),
        "seconds": seconds,
        "messages": tally.messages.most_common(5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="whole `genseq train` s")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--model", action="append", help="'NAME=train flags' (repeatable)")
    add_common_args(parser, shared=False)
    args = parser.parse_args()
    if not all(map(shutil.which, ("abc2midi", "abcm2ps"))):
        raise SystemExit("abc2midi and abcm2ps are needed: apt-get install abcmidi abcm2ps")
    models = [spec.split("=", 1) for spec in (args.model or MODELS)]
    rows, details = [], {}
    with tempfile.TemporaryDirectory(prefix="genseq-music-arch-") as name:
        tmp = Path(name)
        data = tokenize(tmp)
        for i, (label, flags) in enumerate(models):
            run = tmp / f"run{i}"
            wall = train(data, run, args.budget, shlex.split(flags))
            nll = held_out(run, data)
            judged = samples(run, args.samples, tmp)
            details[label] = {"wall": wall, **nll, **judged}
            rows.append(row(label, flags, wall, nll, judged, args.samples))
    headers = ["model", "train flags", "wall", "params / steps", "val nats/token"]
    headers += ["val nats/tune", "abc2midi / abcm2ps flagged", "music21 parsed"]
    headers += ["bars all valid", "ended at <eos>", "sampling"]
    notes = (
        f"folk-abc, `genseq tokenize` defaults ({details[models[0][0]]['tunes']} validation "
        f"tunes); each `genseq train DATA --time-budget {args.budget:.0f} --seed 0`; "
        f"{args.samples} tunes each at `genseq sample`'s defaults (grammar and folk form on). "
        "Models: "
        + "; ".join(f"{k}: {v['model']}" for k, v in details.items())
        + ". Most common tool messages: "
        + "; ".join(f"{k}: {v['messages'] or 'none'}" for k, v in details.items())
    )
    emit("Folk tunes by architecture (folk-abc)", markdown_table(headers, rows), args, notes)
    print(json.dumps({k: {**v, "messages": None} for k, v in details.items()}))


def row(label: str, flags: str, wall: float, nll: dict, judged: dict, n: int) -> list:
    return [
        label,
        f"`{flags}`" if flags else "(none)",
        f"{wall:.0f} s",
        f"{nll['params']:,} / {nll['steps']:,}",
        f"{nll['nats_per_token']:.4f}",
        f"**{nll['nats_per_tune']:.1f}**",
        f"{judged['abc2midi']} / {judged['abcm2ps']} of {n}",
        f"{judged['parsed']} of {n}",
        f"{judged['clean']} of {n}",
        f"{judged['ended']} of {n}",
        f"{judged['seconds']:.0f} s",
    ]


if __name__ == "__main__":
    main()
