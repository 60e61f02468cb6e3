"""The bad-input matrix: every command, given what a hostile or unlucky user gives it, prints
one `error:` line (no traceback), exits 1 (input or runtime error) or 2 (impossible settings),
and changes nothing that existed before. The README's "Errors and exit codes" lists the kinds.

Each case is (arguments, exit code, a fragment of the message). Upper-case words stand for
inputs the `world` fixture builds once: a trained run, a data directory, broken corpora...
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from testkit import files_below, one_error_line, write_midi

# A value outside an option's choices (--cell, --level...) is Click's own usage error, which
# only the real entry point prints as one line: tests/test_conventions.py checks those.
SETTINGS = [  # exit 2: the options cannot work together or with this model
    (["sample", "RUN", "--temperature", "-1"], 2, "--temperature"),
    (["sample", "RUN", "--top-k", "0"], 2, "--top-k"),
    (["sample", "RUN", "--top-p", "1.5"], 2, "--top-p"),
    (["sample", "RUN", "--top-p", "0"], 2, "--top-p"),
    (["sample", "RUN", "--min-p", "1.5"], 2, "--min-p"),
    (["sample", "RUN", "--repetition-penalty", "0"], 2, "--repetition-penalty"),
    (["sample", "RUN", "-n", "0"], 2, "--max-new-tokens"),
    (["sample", "RUN", "--num-samples", "0"], 2, "--num-samples"),
    (["sample", "RUN", "-p", "a", "-f", "x"], 2, "not both"),
    (["sample", "RUN", "--meter", "6/8"], 2, "--meter"),
    (["sample", "RUN", "--rhythm", "jig"], 2, "--rhythm"),
    (["sample", "RUN", "--primer-midi", "TUNE.mid"], 2, "--primer-midi"),
    (["train", "DATA", "-o", "OUT", "--seq-len", "0"], 2, "--seq-len"),
    (["train", "DATA", "-o", "OUT", "--batch-size", "0"], 2, "--batch-size"),
    (["train", "DATA", "-o", "OUT", "--layers", "0"], 2, "--layers"),
    (["train", "DATA", "-o", "OUT", "--dropout", "1.5"], 2, "--dropout"),
    (["train", "DATA", "-o", "OUT", "--weight-drop", "1"], 2, "--weight-drop"),
    (["train", "DATA", "-o", "OUT", "--device", "cuda:7"], 2, "--device"),
    (["train", "DATA", "-o", "OUT", "--ema", "1"], 2, "--ema"),
    (["train", "DATA", "-o", "OUT", "--save-every", "soon"], 2, "--save-every"),
    (["train", "DATA", "-o", "OUT", "--nproc", "0"], 2, "--nproc"),
    (["train", "DATA", "-o", "OUT", "--hidden-size", "2000000"], 2, "no model genseq can build"),
    (["train", "DATA", "-o", "OUT", "--layers", "100000"], 2, "no model genseq can build"),
    (["train", "DATA", "-o", "OUT", "--resume", "--overwrite"], 2, "contradict"),
    (["train", "DATA", "-o", "OUT", "--seq-len", "1000000", "--max-steps", "1"], 2, "seq"),
    (["train", "DATA", "-o", "OUT", "--val", "WORDS"], 2, "--val needs raw sources"),
    (["train", "RUN"], 2, "is a training run"),
    (["tokenize", "WORDS", "-o", "OUT", "--fit-sample", "-1"], 2, "--fit-sample"),
    (["tokenize", "WORDS", "-o", "OUT", "--val-fraction", "0.9"], 2, "--val-fraction"),
    (["tokenize", "WORDS", "-o", "OUT", "--vocab-size", "2"], 2, "--vocab-size"),
    (["tokenize", "WORDS", "-o", "OUT", "--workers", "0"], 2, "--workers"),
    (["tokenize", "WORDS", "-o", "OUT", "--augment-keys", "12"], 2, "--augment-keys"),
    (["tokenize", "WORDS", "-o", "OUT", "--transpose", "H"], 2, "--transpose"),
    (["tokenize", "WORDS", "-o", "OUT", "--pitch-range", "60-62"], 2, "--pitch-range"),
    (["tokenize", "WORDS", "-o", "OUT", "--abc-chords"], 2, "--level abc"),
    (["tokenize", "WORDS", "-o", "OUT", "--val", "WORDS", "--split", "document"], 2, "--split"),
    (["sample", "RUN", "--svg", "OUT"], 2, "--svg: only for ABC models"),
    (["music", "render", "NOTUNES.abc"], 2, "give at least one of --svg"),
    (["music", "render", "NOTUNES.abc", "--svg", "OUT", "--program", "128"], 2, "--program"),
]

PATHS = [  # exit 1: a path that names nothing genseq can use
    (["train", "NOWHERE.txt", "-o", "OUT"], 1, "no such file"),
    (["tokenize", "NOWHERE.txt", "-o", "OUT"], 1, "no such file"),
    (["tokenize", "LOOP", "-o", "OUT"], 1, "symbolic link that leads nowhere"),
    (["eval", "RUN", "NOWHERE.txt"], 1, "no such file"),
    (["sample", "NOWHERE"], 1, "no such checkpoint"),
    (["sample", "EMPTYDIR"], 1, "not a genseq checkpoint"),
    (["info", "NOWHERE"], 1, "no such checkpoint"),
    (["music", "stats", "NOWHERE.txt"], 1, "no such file"),
    (["corpus", "fetch", "no-such-corpus"], 1, "not a corpus name"),
    (["train", "FOREIGN_DATA", "-o", "OUT"], 1, "not from a genseq data directory"),
    (["train", "DATA", "-o", "RUNCOPY"], 1, "--resume"),
    (["train", "DATA", "-o", "EMPTYDIR", "--resume"], 1, "no last/ checkpoint"),
    (["train", "DATA", "-o", "NOTES"], 1, "not empty"),
    (["train", "DATA", "-o", "WORDS"], 1, "is a file"),
    (["tokenize", "WORDS", "-o", "DATA"], 1, "--overwrite"),
    (["tokenize", "WORDS", "-o", "NOTES"], 1, "not a genseq data directory"),
    (["music", "render", "NOWHERE.abc", "--svg", "OUT"], 1, "no such file"),
    (["music", "render", "NOTUNES.abc", "--midi", "OUT", "--svg", "WORDS"], 1, "not a folder"),
]

CORPORA = [  # exit 1: sources that cannot be read
    (["tokenize", "EMPTY.txt", "-o", "OUT"], 1, "empty"),
    (["tokenize", "BINARY.mp3", "-o", "OUT"], 1, "binary"),
    (["tokenize", "LATIN1.txt", "-o", "OUT"], 1, "--encoding-errors"),
    (["train", "BINARY.mp3", "-o", "OUT"], 1, "binary"),
    (["tokenize", "NOTUNES.abc", "-o", "OUT"], 1, "no tunes found"),
    (["tokenize", "BROKEN.mid", "-o", "OUT"], 1, "BROKEN.mid"),
    (["eval", "RUN", "EMPTY.txt"], 1, "empty"),
    (["eval", "RUN", "BINARY.mp3"], 1, "binary"),
    (["sample", "RUN", "-f", "LATIN1.txt"], 1, "--encoding-errors"),
    (["sample", "RUN", "-f", "NOWHERE.txt"], 1, "No such file"),
    (["music", "stats", "EMPTY.txt"], 1, "EMPTY.txt"),
    (["music", "render", "NOTUNES.abc", "--svg", "OUT"], 1, "no tunes"),
    (["music", "render", "EMPTY.txt", "--musicxml", "OUT"], 1, "no tunes"),
]

CHECKPOINTS = [  # exit 1: checkpoints that are damaged or not genseq's
    (["sample", "FOREIGN_CKPT"], 1, "not from a genseq checkpoint"),
    (["info", "FOREIGN_CKPT"], 1, "not from a genseq checkpoint"),
    (["sample", "BAD_WEIGHTS"], 1, "weights"),
    (["eval", "BAD_WEIGHTS", "WORDS"], 1, "weights"),
    (["sample", "NO_TOKENIZER"], 1, "tokenizer"),
    (["sample", "NO_WEIGHTS"], 1, "model.safetensors is missing"),
    (["sample", "BAD_CONFIG"], 1, "config"),
    (["sample", "NEWER_CKPT"], 1, "newer genseq"),
    (["train", "DATA", "-o", "PICKLED", "--resume"], 1, "cannot be resumed"),
]

DATA_DIRECTORIES = [  # exit 1: data directories that are damaged or not this format's
    (["train", "BAD_IDS", "-o", "OUT"], 1, "beyond the vocabulary"),
    (["train", "CUT_TOKENS", "-o", "OUT"], 1, "not a whole number"),
    (["train", "NO_TRAIN_BIN", "-o", "OUT"], 1, "train.bin"),
]

CHECKPOINTS += [
    (["info", "ABSURD_CKPT"], 1, "describes no valid model"),
    (["sample", "ABSURD_CKPT"], 1, "describes no valid model"),
    (["sample", "WRONG_LEVEL"], 1, "config.json says 'abc'"),
]

CASES = [
    *[pytest.param(*case, id="settings: " + " ".join(case[0])) for case in SETTINGS],
    *[pytest.param(*case, id="paths: " + " ".join(case[0])) for case in PATHS],
    *[pytest.param(*case, id="corpora: " + " ".join(case[0])) for case in CORPORA],
    *[pytest.param(*case, id="checkpoints: " + " ".join(case[0])) for case in CHECKPOINTS],
    *[pytest.param(*case, id="data: " + " ".join(case[0])) for case in DATA_DIRECTORIES],
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_run, tiny_data, words_file) -> dict[str, Path]:
    """Every input the cases name, built once; the cases must leave it unchanged."""
    root = tmp_path_factory.mktemp("bad-input")
    (root / "empty").mkdir()
    (root / "EMPTY.txt").write_text("")
    (root / "BINARY.mp3").write_bytes(b"ID3\x00\x00\x01" + bytes(range(256)) * 10)
    (root / "LATIN1.txt").write_bytes("café au lait\n".encode("latin-1") * 20)
    (root / "NOTUNES.abc").write_text("% a tunebook header and no tune\nT:nothing\n")
    (root / "BROKEN.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    write_midi(root / "TUNE.mid", [{"name": "tune", "notes": [(60, 0.0, 0.5), (62, 0.5, 1.0)]}])
    (root / "loop-a").symlink_to(root / "loop-b")
    (root / "loop-b").symlink_to(root / "loop-a")
    (root / "notes").mkdir()
    (root / "notes" / "mine.txt").write_text("a file of the user's")
    foreign = root / "foreign-data"
    foreign.mkdir()
    (foreign / "meta.json").write_text('{"format": "something-else"}')
    shutil.copytree(tiny_run, root / "run-copy")
    checkpoints = _broken_checkpoints(root, tiny_run)
    data_dirs = _broken_data(root, tiny_data)
    return {
        "RUN": tiny_run,
        "DATA": tiny_data,
        "WORDS": words_file,
        "OUT": root / "out",
        "NOWHERE": root / "nope",
        "NOWHERE.txt": root / "nope.txt",
        "EMPTYDIR": root / "empty",
        "LOOP": root / "loop-a",
        "NOTES": root / "notes",
        "FOREIGN_DATA": foreign,
        "RUNCOPY": root / "run-copy",
        **{name: root / name for name in ("EMPTY.txt", "BINARY.mp3", "LATIN1.txt")},
        **{name: root / name for name in ("NOTUNES.abc", "BROKEN.mid", "TUNE.mid")},
        **checkpoints,
        **data_dirs,
        "_root": root,
    }


def _broken_data(root: Path, tiny_data: Path) -> dict[str, Path]:
    import numpy as np

    made = {name: root / f"data-{name}" for name in ("bad-ids", "cut", "no-train")}
    for path in made.values():
        shutil.copytree(tiny_data, path)
    meta = json.loads((tiny_data / "meta.json").read_text())
    ids = np.fromfile(tiny_data / "train.bin", dtype=meta["dtype"])
    ids[5] = meta["vocab_size"] + 3
    ids.tofile(made["bad-ids"] / "train.bin")
    cut = (tiny_data / "train.bin").read_bytes()[:-1]
    (made["cut"] / "train.bin").write_bytes(cut)
    (made["no-train"] / "train.bin").unlink()
    return {
        "BAD_IDS": made["bad-ids"],
        "CUT_TOKENS": made["cut"],
        "NO_TRAIN_BIN": made["no-train"],
    }


def _broken_checkpoints(root: Path, tiny_run: Path) -> dict[str, Path]:
    import torch

    made = {}
    names = ("foreign", "bad-weights", "no-tokenizer", "no-weights", "bad-config", "newer")
    for name in (*names, "absurd", "wrong-level"):
        made[name] = root / f"ckpt-{name}"
        shutil.copytree(tiny_run / "last", made[name])
    config = json.loads((made["newer"] / "config.json").read_text())
    (made["foreign"] / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (made["bad-weights"] / "model.safetensors").write_bytes(b"\x00" * 100)
    (made["no-tokenizer"] / "tokenizer.json").unlink()
    (made["no-weights"] / "model.safetensors").unlink()
    (made["bad-config"] / "config.json").write_text('{"format": "genseq-checkpoint", "mod')
    (made["newer"] / "config.json").write_text(json.dumps({**config, "schema": 99}))
    absurd = {**config, "model": {**config["model"], "hidden_size": 10**100}}
    (made["absurd"] / "config.json").write_text(json.dumps(absurd))
    wrong = {**config, "tokenizer": {**config["tokenizer"], "level": "abc"}}
    (made["wrong-level"] / "config.json").write_text(json.dumps(wrong))
    pickled = root / "pickled"
    shutil.copytree(tiny_run, pickled)
    from genseq.plan import TrainConfig

    evil = {"evil": TrainConfig()}  # any object a weights-only load must refuse to build
    torch.save(evil, pickled / "last" / "train_state.pt")
    return {
        "FOREIGN_CKPT": made["foreign"],
        "BAD_WEIGHTS": made["bad-weights"],
        "NO_TOKENIZER": made["no-tokenizer"],
        "NO_WEIGHTS": made["no-weights"],
        "BAD_CONFIG": made["bad-config"],
        "NEWER_CKPT": made["newer"],
        "ABSURD_CKPT": made["absurd"],
        "WRONG_LEVEL": made["wrong-level"],
        "PICKLED": pickled,
    }


@pytest.mark.parametrize("args, code, message", CASES)
def test_bad_input(cli, world, args, code, message):
    before = files_below(world["_root"])
    argv = [str(world.get(a, a)) for a in args]
    if "train" in argv[:1]:
        small = {"--hidden-size": "16", "--max-steps": "2"}  # where the case sets neither
        argv += [x for flag, value in small.items() if flag not in argv for x in (flag, value)]
        argv.append("--quiet")
    result = cli(*argv)
    assert result.exit_code == code, result.stderr
    assert message in one_error_line(result.stderr)
    assert files_below(world["_root"]) == before  # nothing that existed was changed
    assert not world["OUT"].exists()  # and nothing half-made was left


def test_the_matrix_covers_every_kind_with_at_least_sixty_cases():
    assert len(CASES) >= 60
    assert {"settings", "paths", "corpora", "checkpoints", "data"} == {
        case.id.split(":")[0] for case in CASES
    }
