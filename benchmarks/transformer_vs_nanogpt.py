"""genseq (--arch, default transformer) vs nanoGPT's CPU recipe: quality at a wall budget, sampling.

    python benchmarks/transformer_vs_nanogpt.py --nanogpt DIR [--arch transformer]
        [--budget 90,600] [--lengths 1000,10000,100000] [--parts quality,sampling] [--no-record]
    python benchmarks/transformer_vs_nanogpt.py --nanogpt DIR --budget 90 -- --dropout 0.1

nanoGPT's code is never part of genseq: ``--nanogpt DIR`` is a clone of
github.com/karpathy/nanoGPT or its bare git directory (``git clone --bare``); the few files the
runs need are copied (or ``git show``-n from HEAD) into a temporary folder, so DIR is never
written to. Without it the script exits with a message. Its data is written the way its
``data/shakespeare_char/prepare.py`` writes it (whole-text vocabulary, first 90% train.bin,
last 10% val.bin, uint16, meta.pkl), from ../shared's Tiny Shakespeare, with no network. Its
``sample.py`` imports tiktoken, which it only uses without a meta.pkl: when tiktoken is not
installed an empty stand-in module is put beside it.

(1) Quality at a whole-process wall budget B (Tiny Shakespeare). Same validation bytes for all:
genseq tokenizes nanoGPT's train text with ``--val`` set to nanoGPT's val text (vocabulary from
the train text; every val character occurs there), so genseq's validation split is exactly
nanoGPT's val.bin characters plus an <eos> at each end (one more prediction: negligible).
- genseq ``--arch ARCH`` (planner-sized, plus any flags after ``--``) and genseq's defaults
  (the LSTM), each ``genseq train DATA --time-budget B``: the whole process ends within B,
  its final evaluation over the whole validation split included (checked in log.jsonl).
- nanoGPT: its README's CPU recipe, ``train.py config/train_shakespeare_char.py --device=cpu
  --compile=False --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12
  --n_layer=4 --n_head=4 --n_embd=128 --max_iters=N --lr_decay_iters=N --dropout=0.0``.
  The fair rule: nanoGPT gets its whole cosine schedule inside the budget. N is fitted to B
  from a calibration run (40 iterations, once, outside every budget): B x 0.97 = start-up +
  (N+1) iterations + its evaluations (eval_interval is N/k for k = round(N/250), so the
  last evaluation falls on the last iteration). The run is also killed at B if it overruns
  (the table says so); its checkpoint is then the last one saved. ``--nanogpt-iters N``
  replaces the fit (2000 is the literal README recipe).
  Scoring: nanoGPT's own printed ``val loss`` is 20 random 12x64 windows (each character
  with 0-63 characters of context, noisy); the table reports it but ranks on the harness's
  evaluation of its saved checkpoint (its recipe keeps the best by its own val estimate) over
  the WHOLE val.bin, sliding windows of block_size with stride block_size/2 so every
  character after the first 32 has 32-63 characters of context (the first val character has
  no prediction). That evaluation runs after the process, outside its wall time, where
  genseq's final evaluation counts inside its budget: both favour nanoGPT.
(2) Sampling at batch 1: chars/s of genseq's sampler and of nanoGPT's ``sample.py
--max_new_tokens=L`` (which re-runs its cropped 64-character context every token), each a
whole process, the best of ``--repeats``. genseq runs what ``genseq sample RUN -n L -s 1
--temperature 0.8`` runs (``load_checkpoint`` then ``generate()``: SAMPLE_DRIVER below) with
``stop_at_eos=False``, since the CLI ends every sample at <eos> and a barely trained model
says <eos> within a few hundred characters; its rate is L over the seconds inside
``generate()`` (start-up subtracted by a noisy difference of walls would swamp 1,000
characters at thousands per second). sample.py times nothing, so its rate is
(L - 1) / (wall(L) - wall(1)): start-up and loading subtracted, its L >= 1,000 characters
taking seconds. The models have nanoGPT's size: nanoGPT 4x4x128,
block ``--sample-context`` (default 64, the recipe's; 256 is train_shakespeare_char's own),
trained 20 iterations (weights do not change the speed); genseq ``--arch ARCH``
with ``--sample-model`` flags (default: transformer 4 layers, 4 heads, 128 wide, the same context;
recurrent 2x256, embedding 64, about nanoGPT's 0.8 M parameters) trained
``--sample-train-budget`` seconds. Both at temperature 0.8 (nanoGPT's default; its top_k 200
keeps all 65 characters). ``--nanogpt-lengths`` defaults to 1,000 and 10,000: nanoGPT's cost
per character is flat by construction (a fixed 64-character window) and 100,000 characters
would take it about 4 minutes.

Recurrent --arch values (lstm, gru, rnn) become ``--arch rnn --cell CELL`` or, before genseq
had --arch, ``--cell CELL`` (the notes say which). Full run at --budget 90,600: about 40 min.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import pickle
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

from _common import add_common_args, emit, genseq_exe, markdown_table, require, run_timed
from quality_at_budget import run_genseq

NANOGPT_FILES = (
    "train.py",
    "model.py",
    "sample.py",
    "configurator.py",
    "config/train_shakespeare_char.py",
)
RECIPE = [  # nanoGPT README's CPU recipe, less --max_iters/--lr_decay_iters (fitted to B)
    "--device=cpu",
    "--compile=False",
    "--eval_iters=20",
    "--log_interval=1",
    "--block_size=64",
    "--batch_size=12",
    "--n_layer=4",
    "--n_head=4",
    "--n_embd=128",
    "--dropout=0.0",
]
BLOCK = 64
EVAL_EVERY = 250  # the recipe's config eval_interval
CALIBRATION_ITERS = 40
SAFETY = 0.97  # share of the budget the fitted schedule aims at
SAMPLE_MODEL = {
    "transformer": "--layers 4 --heads 4 --hidden-size 128",  # --context: --sample-context
    "recurrent": "--layers 2 --hidden-size 256 --embed-size 64",
}
ITER_RE = re.compile(r"^iter (\d+): loss [\d.naif]+, time ([\d.]+)ms", re.M)
EVAL_RE = re.compile(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)", re.M)


# ---------------------------------------------------------------- nanoGPT's tree and data


def nanogpt_tree(source: Path | None, dest: Path) -> Path:
    """Copy the files the runs need from a nanoGPT clone or bare git dir into ``dest``."""
    hint = "pass --nanogpt DIR: a clone (or bare clone) of github.com/karpathy/nanoGPT"
    if source is None:
        sys.exit(f"skipped: nanoGPT is needed ({hint})")
    if not source.is_dir():
        sys.exit(f"skipped: {source} is absent ({hint})")
    bare = not (source / "train.py").exists() and (source / "objects").is_dir()
    for name in NANOGPT_FILES:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if bare:
            cmd = ["git", "--git-dir", str(source), "show", f"HEAD:{name}"]
            got = subprocess.run(cmd, capture_output=True)
            if got.returncode != 0:
                sys.exit(f"skipped: {source} has no {name} at HEAD ({hint})")
            target.write_bytes(got.stdout)
        elif (source / name).is_file():
            shutil.copyfile(source / name, target)
        else:
            sys.exit(f"skipped: {source / name} is absent ({hint})")
    if find_spec("tiktoken") is None:  # sample.py imports it; unused when meta.pkl exists
        stub = '"""Stand-in: sample.py reads meta.pkl, so tiktoken is never called."""\n'
        (dest / "tiktoken.py").write_text(stub)
    return dest


def prepare_shakespeare_char(text: str, tree: Path) -> tuple[str, str]:
    """nanoGPT's data/shakespeare_char/prepare.py without the download; (train, val) text."""
    import numpy as np

    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = dict(enumerate(chars))
    n = len(text)
    train, val = text[: int(n * 0.9)], text[int(n * 0.9) :]
    out = tree / "data" / "shakespeare_char"
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train.bin", train), ("val.bin", val)):
        np.array([stoi[c] for c in part], dtype=np.uint16).tofile(out / name)
    meta = {"vocab_size": len(chars), "itos": itos, "stoi": stoi}
    (out / "meta.pkl").write_bytes(pickle.dumps(meta))
    return train, val


# ---------------------------------------------------------------- nanoGPT training


@dataclass
class Capped:
    wall_s: float
    out: str
    killed: bool


def run_capped(cmd: list[str], cwd: Path, cap: float | None) -> Capped:
    """Run ``cmd``; kill it (SIGKILL, its whole group) if it is still running at ``cap`` s."""
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # a killed run keeps its last lines
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=cap)
            killed = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            killed = True
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    if proc.returncode != 0 and not killed:
        sys.exit(f"failed ({proc.returncode}): {shlex.join(cmd)}\n{text.strip()[-2000:]}")
    return Capped(wall, text, killed)


@dataclass
class NanoRun:
    wall_s: float
    killed: bool
    iters: int  # iterations completed (the last logged iter + 1)
    iter_ms: list[float]
    evals: list[tuple[int, float, float]]  # (step, train loss, val loss) as it printed them
    out_dir: Path
    max_iters: int = 0
    eval_interval: int = 0
    val_loss: float = float("nan")  # the harness's whole-val.bin evaluation
    params: int = 0
    extra: dict = field(default_factory=dict)


def nanogpt_train(
    tree: Path,
    out_dir: Path,
    max_iters: int,
    eval_interval: int,
    cap: float | None,
    extra: Sequence[str] = (),
) -> NanoRun:
    """The recipe's run; ``extra`` flags come last, so they override the recipe's."""
    cmd = [sys.executable, "train.py", "config/train_shakespeare_char.py", *RECIPE, *extra]
    cmd += [f"--max_iters={max_iters}", f"--lr_decay_iters={max_iters}"]
    cmd += [f"--eval_interval={eval_interval}", f"--out_dir={out_dir}"]
    run = run_capped(cmd, tree, cap)
    iters = [(int(i), float(ms)) for i, ms in ITER_RE.findall(run.out)]
    evals = [(int(s), float(t), float(v)) for s, t, v in EVAL_RE.findall(run.out)]
    done = iters[-1][0] + 1 if iters else 0
    times = [ms for _, ms in iters]
    return NanoRun(run.wall_s, run.killed, done, times, evals, out_dir, max_iters, eval_interval)


@dataclass
class Calibration:
    fixed_s: float  # start-up, data, model, exit
    iter_s: float  # one training iteration
    eval_s: float  # one evaluation (20 + 20 batches)


def calibrate(tree: Path, tmp: Path) -> Calibration:
    """Time nanoGPT's recipe for a few iterations: fixed cost, per iteration, per evaluation."""
    half = CALIBRATION_ITERS // 2
    run = nanogpt_train(tree, tmp / "nano-calibration", CALIBRATION_ITERS, half, None)
    if len(run.iter_ms) <= CALIBRATION_ITERS:
        sys.exit(f"nanoGPT calibration logged {len(run.iter_ms)} iterations; expected more")
    plain = [ms for i, ms in enumerate(run.iter_ms) if i >= 2 and i % half]
    iter_s = statistics.median(plain) / 1000
    # iteration `half` includes an evaluation (and a checkpoint save), after warm-up
    eval_s = max(0.0, run.iter_ms[half] / 1000 - iter_s)
    fixed = max(0.0, run.wall_s - sum(run.iter_ms) / 1000)
    return Calibration(fixed, iter_s, eval_s)


def fit_iters(budget: float, cal: Calibration) -> tuple[int, int]:
    """(max_iters, eval_interval) whose run, evaluations included, fills SAFETY x budget."""
    room = budget * SAFETY - cal.fixed_s - cal.eval_s - cal.iter_s
    n = max(1, int(room / (cal.iter_s + cal.eval_s / EVAL_EVERY)))
    return schedule(n)


def schedule(n: int) -> tuple[int, int]:
    """(max_iters, eval_interval): about one evaluation per 250 iterations, the last at n."""
    k = max(1, round(n / EVAL_EVERY))
    interval = max(1, n // k)
    return interval * k, interval


def window_plan(length: int, block: int, stride: int) -> list[tuple[int, int]]:
    """(start, first scored position) of each window over ``length`` ids: window ``s`` reads
    ids s..s+block-1 and predicts ids s+1..s+block; together they predict every id but the
    first exactly once, each (after the first window) with at least block - stride before it."""
    last = length - 1 - block
    plan, scored_to = [], 0  # ids up to scored_to are predicted already
    for s in sorted(set(range(0, last, stride)) | {last}):
        plan.append((s, max(0, scored_to - s)))
        scored_to = s + block
    return plan


def nanogpt_score(tree: Path, out_dir: Path, stride: int = BLOCK // 2) -> tuple[float, int]:
    """Mean nats/char of nanoGPT's saved checkpoint over the whole val.bin, and the count.

    Windows of its block size every ``stride`` characters (the last one ending at the end);
    each scores only the targets no earlier window scored, so every character but the first
    is predicted once, after the first window with at least block - stride of context.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    ckpt_path = out_dir / "ckpt.pt"
    if not ckpt_path.exists():
        return float("nan"), 0
    sys.path.insert(0, str(tree))
    try:
        from model import GPT, GPTConfig  # nanoGPT's model.py, from the temporary tree
    finally:
        sys.path.remove(str(tree))
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its size; the table owns stdout
        model = GPT(GPTConfig(**ckpt["model_args"]))
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()})
    model.eval()
    ids = np.fromfile(tree / "data" / "shakespeare_char" / "val.bin", dtype=np.uint16)
    data = torch.from_numpy(ids.astype(np.int64))
    block = min(model.config.block_size, len(data) - 1)
    plan = window_plan(len(data), block, stride)
    total, count = 0.0, 0
    with torch.no_grad():
        for at in range(0, len(plan), 64):  # 64 windows per forward pass
            batch = plan[at : at + 64]
            x = torch.stack([data[s : s + block] for s, _ in batch])
            y = torch.stack([data[s + 1 : s + 1 + block] for s, _ in batch])
            logits, _ = model(x, y)
            losses = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")
            for row, (_, first) in enumerate(batch):
                total += float(losses[row, first:].sum())
                count += block - first
    return total / max(1, count), count


# ---------------------------------------------------------------- genseq


def arch_flags(arch: str) -> tuple[list[str], str]:
    """``genseq train`` flags selecting ``arch``, and a note saying which flags stood in.

    Reads the choices from ``genseq train --help``: ``--arch transformer`` where offered;
    a recurrent cell (lstm, gru, rnn) as ``--arch CELL`` if --arch lists it, else as
    ``--arch rnn --cell CELL`` or, before --arch existed, ``--cell CELL``.
    """
    helptext = subprocess.run([genseq_exe(), "train", "--help"], capture_output=True, text=True)
    found = re.search(r"--arch <([^>]*)>", helptext.stdout)
    choices = found.group(1).split("|") if found else []
    cells = {"lstm": "lstm", "gru": "gru", "rnn": "rnn-tanh"}
    if arch in choices:
        return ["--arch", arch], ""
    if arch not in cells:
        sys.exit(
            f"skipped: this genseq's train has no --arch {arch} (choices: {choices or 'none'})"
        )
    flags = (["--arch", "rnn"] if "rnn" in choices else []) + ["--cell", cells[arch]]
    return flags, f"--arch {arch} is `{' '.join(flags)}` in this genseq."


def genseq_data(train: str, val: str, tmp: Path) -> Path:
    """Tokenize nanoGPT's train text, with exactly its val text as the validation split."""
    (tmp / "train.txt").write_text(train, encoding="utf-8")
    (tmp / "val.txt").write_text(val, encoding="utf-8")
    if set(val) - set(train):
        sys.exit("the val text has characters the train text lacks: the splits would differ")
    cmd = [genseq_exe(), "tokenize", str(tmp / "train.txt"), "--val", str(tmp / "val.txt")]
    run_timed([*cmd, "-o", str(tmp / "data"), "--level", "char", "--quiet"])
    return tmp / "data"


# ---------------------------------------------------------------- sampling


def best_wall(cmd: list[str], cwd: Path | None, repeats: int) -> tuple[float, str]:
    """The fastest of ``repeats`` whole-process runs, and that run's stdout."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        got = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if got.returncode != 0:
            sys.exit(f"failed ({got.returncode}): {shlex.join(cmd)}\n{got.stderr[-2000:]}")
        runs.append((wall, got.stdout))
    return min(runs)


def nanogpt_sample_cmd(out_dir: Path, n: int) -> list[str]:
    cmd = [sys.executable, "sample.py", f"--out_dir={out_dir}", "--device=cpu"]
    return cmd + ["--compile=False", "--num_samples=1", f"--max_new_tokens={n}", "--seed=1"]


# What `genseq sample RUN -n N -s 1 --temperature 0.8` runs, as a whole process, with
# stop_at_eos=False: the CLI always ends a sample at <eos>, which would cut lengths short.
SAMPLE_DRIVER = """
import json, sys, time
from genseq.checkpoint import load_checkpoint
from genseq.generate import generate
from genseq.sample import SamplingSettings
ckpt = load_checkpoint(sys.argv[1], "cpu")
settings = SamplingSettings(temperature=0.8)
n = int(sys.argv[2])
start = time.perf_counter()
(s,) = generate(ckpt, "", settings, max_new_tokens=n, seed=1, stop_at_eos=False)
seconds = time.perf_counter() - start
print(s.text)
print(json.dumps({"tokens": s.tokens, "seconds": seconds}))
"""


def genseq_sample_cmd(run: Path, n: int) -> list[str]:
    # -P: the installed genseq, never a genseq/ folder in the working directory
    return [sys.executable, "-P", "-c", SAMPLE_DRIVER, str(run), str(n)]


def sampling_rows(tree: Path, data: Path, tmp: Path, args, arch: list[str]) -> list[list]:
    """Chars/s at batch 1 per length: genseq timed around generate(), nanoGPT's sample.py as
    whole processes minus a one-token run (it reports no time of its own)."""
    block = args.sample_context
    nano = nanogpt_train(tree, tmp / "nano-sample", 20, 20, None, [f"--block_size={block}"])
    kind = "transformer" if args.arch == "transformer" else "recurrent"
    size = shlex.split(args.sample_model or SAMPLE_MODEL[kind])
    if kind == "transformer" and not args.sample_model:
        size += ["--context", str(block)]
    run = tmp / "genseq-sample"
    cmd = [genseq_exe(), "train", str(data), "-o", str(run), *arch, *size]
    cmd += ["--time-budget", str(args.sample_train_budget), "--json", "--quiet"]
    summary = json.loads(run_timed(cmd).stdout.strip().splitlines()[-1])
    n0, _ = best_wall(nanogpt_sample_cmd(nano.out_dir, 1), tree, args.repeats)
    nano_rates: dict[int, float] = {}
    for n in parse_ints(args.nanogpt_lengths):
        wall, _ = best_wall(nanogpt_sample_cmd(nano.out_dir, n), tree, args.repeats)
        nano_rates[n] = (n - 1) / (wall - n0) if wall > n0 else float("nan")
    rows, first = [], None
    gname = f"genseq generate(), {args.arch} {' '.join(size)} ({summary['parameters']:,} params)"
    for n in parse_ints(args.lengths):
        wall, made, seconds = genseq_sample(run, n, tmp, args.repeats)
        rate = made / seconds
        first = first or 1 / rate
        near = min(nano_rates, key=lambda k: abs(math.log(k / n)))
        chars = f"{made:,}" + ("" if made == n else f" of {n:,}")
        rows.append(
            [gname, chars, f"**{rate:,.0f}**", f"{1e6 / rate:.0f}", f"{1 / rate / first:.2f}"]
            + [f"{rate / nano_rates[near]:.1f} (vs {near:,})", f"{wall:.1f} s", ">= 10x, flat"]
        )
    for n, rate in nano_rates.items():
        rows.append([f"nanoGPT sample.py, 4x4x128 block {block}", f"{n:,}", f"{rate:,.0f}"])
        rows[-1] += [f"{1e6 / rate:.0f}", "", "1", f"{n0:.1f} s + {n / rate:.1f} s"]
    return rows


def genseq_sample(run: Path, n: int, cwd: Path, repeats: int) -> tuple[float, int, float]:
    """(whole-process wall, tokens, seconds inside generate()) of the fastest of ``repeats``."""
    runs = []
    for _ in range(repeats):
        wall, out = best_wall(genseq_sample_cmd(run, n), cwd, 1)
        got = json.loads(out.strip().splitlines()[-1])
        runs.append((got["seconds"], got["tokens"], wall))
    seconds, made, wall = min(runs)
    return wall, made, seconds


def parse_ints(spec: str) -> list[int]:
    return [int(float(x)) for x in spec.split(",") if x]


# ---------------------------------------------------------------- quality


def quality_rows(tree: Path, data: Path, tmp: Path, args, arch: list[str]) -> list[list]:
    """Per budget: genseq --arch, genseq's LSTM, nanoGPT's recipe fitted to the budget."""
    lstm, _ = arch_flags("lstm")
    cal = None if args.nanogpt_iters else calibrate(tree, tmp)
    rows = []
    for budget in [float(b) for spec in args.budget or ["90,600"] for b in spec.split(",") if b]:
        runs = [(f"genseq {' '.join(arch + args.train_args)}", [*arch, *args.train_args])]
        for variant in args.variant or []:  # more genseq rows, each --arch ARCH plus its flags
            flags = [*arch, *args.train_args, *shlex.split(variant)]
            runs.append((f"genseq {' '.join(flags)}", flags))
        if args.arch != "lstm" or args.train_args:  # the LSTM, sized by the planner
            runs.append(("genseq LSTM (planner-sized default)", lstm))
        results = []
        for name, flags in runs:
            out = tmp / f"run-{len(results)}-{budget:g}"
            results.append((name, run_genseq(data, out, budget, flags)))
        iters, every = schedule(args.nanogpt_iters) if cal is None else fit_iters(budget, cal)
        nano = nanogpt_train(tree, tmp / f"nano-{budget:g}", iters, every, budget)
        nano.val_loss, scored = nanogpt_score(tree, nano.out_dir)
        for name, r in results:
            ratio = r["val_loss"] - nano.val_loss
            rows.append(
                [name, f"{budget:g} s", f"{r['wall']:.1f} s", f"{r['tokens'] / r['wall']:,.0f}"]
                + [f"**{r['val_loss']:.4f}**", "", f"{ratio:+.3f}", r["note"]]
            )
        own = f"{nano.evals[-1][2]:.4f} (step {nano.evals[-1][0]})" if nano.evals else "none"
        note = f"{nano.iters:,} iters (max_iters {iters:,}, eval every {every}), "
        note += f"{scored:,} chars scored"
        note += "; KILLED at the budget" if nano.killed else ""
        rows.append(
            ["nanoGPT CPU recipe 4x4x128", f"{budget:g} s", f"{nano.wall_s:.1f} s"]
            + [f"{nano.iters * 12 * BLOCK / nano.wall_s:,.0f}", f"**{nano.val_loss:.4f}**"]
            + [own, "0", note]
        )
    if cal is not None:
        rows.append(["nanoGPT calibration", "", "", "", "", "", "", calibration_note(cal)])
    return rows


def calibration_note(cal: Calibration) -> str:
    ms = f"{cal.iter_s * 1000:.1f} ms/iter"
    return f"{CALIBRATION_ITERS} iters: {ms}, {cal.eval_s:.2f} s/eval, {cal.fixed_s:.1f} s fixed"


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", type=Path, help="a nanoGPT clone or bare git dir (required)")
    parser.add_argument("--arch", default="transformer", help="genseq --arch (default transformer)")
    parser.add_argument("--parts", default="quality,sampling", help="quality, sampling or both")
    parser.add_argument("--budget", action="append", help="seconds; a list (default 90,600)")
    parser.add_argument("--nanogpt-iters", type=int, default=0, help="fix max_iters (0: fitted)")
    parser.add_argument("--variant", action="append", help="more genseq train flags, another row")
    parser.add_argument("--max-chars", type=int, default=0, help="use a prefix (tiny runs)")
    parser.add_argument("--lengths", default="1000,10000,100000", help="genseq sample lengths")
    parser.add_argument("--nanogpt-lengths", default="1000,10000", help="sample.py lengths")
    parser.add_argument("--repeats", type=int, default=3, help="sampling runs; the best counts")
    parser.add_argument("--sample-model", default="", help="genseq size flags for sampling")
    parser.add_argument("--sample-train-budget", type=float, default=15.0, help="seconds")
    parser.add_argument(
        "--sample-context", type=int, default=BLOCK, help="both models' context when sampling"
    )
    add_common_args(parser)
    parser.add_argument("train_args", nargs="*", help="more `genseq train` flags, after --")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts or parts - {"quality", "sampling"}:
        parser.error("--parts takes quality, sampling or quality,sampling")
    corpus = require(args.shared / "corpora" / "tinyshakespeare" / "input.txt")
    with tempfile.TemporaryDirectory(prefix="genseq-nanogpt-") as name:
        tmp = Path(name)
        tree = nanogpt_tree(args.nanogpt, tmp / "nanoGPT")
        arch, arch_note = arch_flags(args.arch)
        text = corpus.read_text(encoding="utf-8")
        train, val = prepare_shakespeare_char(text[: args.max_chars or None], tree)
        data = genseq_data(train, val, tmp)
        if "quality" in parts:
            report_quality(quality_rows(tree, data, tmp, args, arch), args, arch_note)
        if "sampling" in parts:
            report_sampling(sampling_rows(tree, data, tmp, args, arch), args, arch_note)


def report_quality(rows: list[list], args, arch_note: str) -> None:
    headers = ["system", "budget", "wall time", "train tokens/s over wall"]
    headers += ["val nats/char (whole val)", "nanoGPT's own val estimate", "minus nanoGPT"]
    headers += ["notes"]
    notes = (
        "Same validation characters for every row (nanoGPT's last 10%). genseq: its final "
        "evaluation over the whole split, inside its budget. nanoGPT: its saved checkpoint "
        "scored by this script over the whole val.bin (sliding windows of 64, stride 32), "
        "outside its wall time; "
        + (
            f"max_iters fixed at {args.nanogpt_iters} by --nanogpt-iters. "
            if args.nanogpt_iters
            else "max_iters fitted to the budget from the calibration run. "
        )
        + "A row marked KILLED overran its budget and is scored from its last checkpoint. "
        "Target (issue 20): genseq's Transformer at least 0.25 nats/char below nanoGPT at 90 "
        "and 600 s. " + arch_note + load_note()
    )
    emit(
        "genseq vs nanoGPT's CPU recipe: Tiny Shakespeare at a wall budget",
        table_of(headers, rows),
        args,
        notes,
    )


def report_sampling(rows: list[list], args, arch_note: str) -> None:
    headers = ["sampler (batch 1)", "chars", "chars/s", "us/char", "time/char vs first"]
    headers += ["ratio vs nanoGPT", "whole process", "target"]
    notes = (
        "genseq: chars over the seconds inside generate() (load_checkpoint and start-up "
        "excluded; the whole process's wall beside it). nanoGPT's sample.py reports no time: "
        "(chars - 1) / (wall(chars) - wall(1 char)), start-up and loading subtracted "
        f"(shown: one-char wall + sampling). Best of {args.repeats} runs each. The ratio "
        "is taken at its nearest measured length (its cost per character is flat by "
        f"construction: a fixed {args.sample_context}-character window re-run every token). "
        + arch_note
        + load_note()
    )
    emit(
        "sampling speed at batch 1: genseq sample vs nanoGPT sample.py",
        table_of(headers, rows),
        args,
        notes,
    )


LOAD_AT_START = os.getloadavg()[0]


def load_note() -> str:
    """The 1-minute load average when the script started and now: above ~0.5 on these
    2-core machines, something else was running and the figures are not comparable."""
    return f" Load average (1 min) {LOAD_AT_START:.2f} at the start, {os.getloadavg()[0]:.2f} now."


def table_of(headers: list[str], rows: list[list]) -> str:
    return markdown_table(headers, [row + [""] * (len(headers) - len(row)) for row in rows])


if __name__ == "__main__":
    main()
