"""Checked at the door: a checkpoint or data directory from outside is refused with one line,
cheaply and before anything is allocated, when its parts disagree or hold what no genseq
wrote; and a save that the disk cuts short says so in one line, keeping the previous one."""

from __future__ import annotations

import errno
import json
import math
import os
import random
import resource
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from door_fuzz import (
    build_bases,
    load_checkpoint_fully,
    mutate_checkpoint,
    mutate_data,
    open_data_fully,
    other_level_tokenizers,
    try_once,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import TINY, one_error_line, run

from genseq.checkpoint import inspect_checkpoint, load_checkpoint, save_checkpoint
from genseq.data import open_data
from genseq.errors import GenseqError
from genseq.model import ModelConfig, RecurrentLM
from genseq.tokenization import LEVELS, load_tokenizer
from genseq.tokenizer_kinds import check_tokenizer, levels_of

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints" / "folk-tunes"


def edit_json(path: Path, **changes) -> None:
    """Set values in a JSON file; a key ``a__b`` sets ``doc["a"]["b"]``."""
    doc = json.loads(path.read_text())
    for key, value in changes.items():
        *parents, last = key.split("__")
        where = doc
        for parent in parents:
            where = where[parent]
        where[last] = value
    path.write_text(json.dumps(doc))


def the_only_line(stderr: str) -> str:
    """The error line, and nothing else on stderr (no C++ frames, no traceback)."""
    line = one_error_line(stderr)
    assert stderr.strip().splitlines() == [line], stderr
    assert len(line) < 500, line
    return line


@pytest.fixture
def ckpt(tmp_path, tiny_run) -> Path:
    """A copy of the tiny run's best checkpoint (a character LSTM), to damage."""
    return Path(shutil.copytree(tiny_run / "best", tmp_path / "ckpt"))


@pytest.fixture
def data(tmp_path, tiny_data) -> Path:
    """A copy of the tiny character-level data directory, to damage."""
    return Path(shutil.copytree(tiny_data, tmp_path / "data"))


# -- 2: a full disk during a save ----------------------------------------------------------------


def _no_space_in_safetensors(monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    def save_model(*_args, **_kwargs):  # what safetensors raises on a full disk
        raise SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(safetensors.torch, "save_model", save_model)


def _no_space_in_torch_save(monkeypatch):
    def save(*_args, **_kwargs):  # what torch.save raises when the disk cuts its zip short
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . unexpected pos 105472 vs 105360\n"
            "frame #0: c10::ThrowEnforceNotMet(char const*, int, char const*) + 0x68\n"
            "frame #1: caffe2::serialize::PyTorchStreamWriter::writeRecord + 0x4cf"
        )

    monkeypatch.setattr(torch, "save", save)


def _no_space_in_config(monkeypatch):
    import genseq.checkpoint

    def write(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(genseq.checkpoint, "atomic_write_text", write)


@pytest.mark.parametrize(
    "fill, cause",
    [
        (_no_space_in_safetensors, "model.safetensors: No space left on device"),
        (_no_space_in_torch_save, "train_state.pt: the write stopped short (unexpected pos"),
        (_no_space_in_config, "No space left on device"),
    ],
)
def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_previous_checkpoint(
    tmp_path, tiny_run, monkeypatch, fill, cause
):
    loaded = load_checkpoint(tiny_run / "best")
    target = tmp_path / "last"
    state = {"step": torch.tensor(1)}
    save_checkpoint(target, loaded.model, loaded.tokenizer, {}, {"step": 1}, state)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    fill(monkeypatch)
    with pytest.raises(GenseqError) as caught:
        save_checkpoint(target, loaded.model, loaded.tokenizer, {}, {"step": 2}, state)
    message = str(caught.value)
    assert "\n" not in message and cause in message, message
    assert message.startswith(f"{target}: checkpoint not saved")
    assert message.endswith("the previous one is kept")
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # no staging left behind


def _file_size_limit(limit: int):
    """Writes past ``limit`` bytes fail (EFBIG), as on a full disk; Python ignores SIGXFSZ."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow
@pytest.mark.parametrize("fails_in", ["model.safetensors", "train_state.pt"])
def test_train_on_a_disk_that_fills_during_the_save_says_so_in_one_line(
    tmp_path, tiny_data, fails_in
):
    run_dir = tmp_path / "run"
    first = run("train", tiny_data, "-o", run_dir, "--max-steps", "5", "--quiet", *TINY)
    assert first.returncode == 0, first.stderr
    last = run_dir / "last"
    before = {p.name: p.read_bytes() for p in last.iterdir()}
    weights, state = len(before["model.safetensors"]), len(before["train_state.pt"])
    # The real writers fail: below the weights' size safetensors does; between it and the
    # training state's size, torch.save does.
    limit = weights // 2 if fails_in == "model.safetensors" else (weights + state) // 2
    resumed = run(
        "train", tiny_data, "-o", run_dir, "--resume", "--max-steps", "10", "--quiet",
        preexec_fn=_file_size_limit(limit),
    )  # fmt: skip
    assert resumed.returncode == 1, resumed.stderr
    line = the_only_line(resumed.stderr.decode())
    assert "checkpoint not saved" in line and fails_in in line, line
    assert line.endswith("the previous one is kept")
    assert {p.name: p.read_bytes() for p in last.iterdir()} == before
    assert load_checkpoint(last).config["summary"]["step"] == 5
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


# -- 4: token ids at or above the vocabulary -----------------------------------------------------


def _set_id(path: Path, at: int, value: int, dtype: str = "uint16") -> None:
    tokens = np.fromfile(path, dtype=dtype)
    tokens[at] = value
    tokens.tofile(path)


@pytest.mark.parametrize("split", ["train.bin", "val.bin"])
@pytest.mark.parametrize("past", [0, 1, 65535])
def test_token_ids_past_the_vocabulary_are_refused_when_data_is_opened(data, split, past):
    vocab = json.loads((data / "meta.json").read_text())["vocab_size"]
    _set_id(data / split, -1, min(vocab + past, 65535))
    with pytest.raises(GenseqError, match=rf"{split}: holds token id [\d,]+, beyond the voc"):
        open_data(data)


def test_the_id_check_reads_every_chunk(data, monkeypatch):
    import genseq.data

    monkeypatch.setattr(genseq.data, "ID_CHECK_CHUNK", 7)
    vocab = json.loads((data / "meta.json").read_text())["vocab_size"]
    _set_id(data / "train.bin", -1, vocab)  # in the last, partial chunk
    with pytest.raises(GenseqError, match="beyond the vocabulary"):
        open_data(data)


def test_train_refuses_ids_past_the_vocabulary_before_it_starts(cli, tmp_path, data):
    _set_id(data / "train.bin", 100, 60000)
    result = cli("train", data, "-o", tmp_path / "run", "--max-steps", "2", "--quiet", *TINY)
    assert result.exit_code == 1
    assert "train.bin: holds token id 60,000" in the_only_line(result.stderr)
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: edit_json(d / "meta.json", dtype="int8"), "dtype must be uint16 or uint32"),
        (lambda d: edit_json(d / "meta.json", dtype="float64"), "dtype must be uint16 or"),
        (lambda d: edit_json(d / "meta.json", vocab_size=70000), "to 65,536 in uint16 token"),
        (lambda d: edit_json(d / "meta.json", vocab_size="30"), "vocab_size must be an integ"),
        (lambda d: edit_json(d / "meta.json", level=["char"]), "no tokenizer level"),
        (lambda d: edit_json(d / "meta.json", options=[1]), "options must be an object"),
        (lambda d: edit_json(d / "meta.json", schema="1"), "schema must be an integer"),
        (
            lambda d: (d / "val.bin").write_bytes((d / "val.bin").read_bytes()[:-1]),
            "val.bin: not a whole number of uint16 token ids",
        ),
        (
            lambda d: (d / "train.bin").write_bytes((d / "train.bin").read_bytes()[:-20]),
            "meta.json records",
        ),
        (lambda d: edit_json(d / "meta.json", schema=10**1000), r"genseq \(schema 10+\.\.\.\)$"),
    ],
)
def test_a_data_directory_that_disagrees_with_itself_is_refused(data, change, message):
    change(data)
    with pytest.raises(GenseqError, match=message):
        open_data(data)


def test_a_data_directory_whose_tokenizer_has_another_vocabulary_is_refused(data):
    vocab = json.loads((data / "meta.json").read_text())["vocab_size"]
    edit_json(data / "meta.json", vocab_size=vocab + 1)
    with pytest.raises(GenseqError, match="tokens, but meta.json records"):
        open_data(data).tokenizer()


# -- 5: file names inside a data directory are the format's ----------------------------------


@pytest.mark.parametrize("named", ["../secret.bin", "{outside}/secret.bin"])
def test_meta_json_file_names_are_never_followed(tmp_path, data, named):
    secret = tmp_path / "secret.bin"
    np.arange(2, 30, dtype=np.uint16).tofile(secret)  # valid ids: a loader would take them
    named = named.format(outside=tmp_path)
    edit_json(data / "meta.json", splits__train__file=named, splits__val__file=named)
    opened = open_data(data)
    assert np.array_equal(opened.train, np.fromfile(data / "train.bin", dtype=np.uint16))
    assert np.array_equal(opened.val, np.fromfile(data / "val.bin", dtype=np.uint16))
    (data / "train.bin").unlink()
    with pytest.raises(GenseqError, match=r"incomplete data directory \(no train.bin\)"):
        open_data(data)


def test_train_never_reads_etc_group_for_tokens(cli, tmp_path, data):
    edit_json(data / "meta.json", splits__train__file="../../../../../../../../etc/group")
    (data / "train.bin").unlink()
    result = cli("train", data, "-o", tmp_path / "run", "--max-steps", "2", "--quiet", *TINY)
    assert result.exit_code == 1
    line = the_only_line(result.stderr)
    assert "no train.bin" in line and "group" not in line


# -- 6: configuration values inside bounds, weights that match them --------------------------


ABSURD = [
    ({"hidden_size": 10**100}, "hidden_size must be an integer from 1 to"),
    ({"num_layers": 100_000}, "num_layers must be an integer from 1 to 256"),
    ({"vocab_size": 2**40}, "vocab_size must be an integer from 1 to"),
    ({"embed_size": 0}, "embed_size must be an integer from 1 to"),
    ({"vector_size": -1}, "vector_size must be an integer from 0 to"),
    ({"vector_size": "50"}, "vector_size must be an integer from 0 to"),
    ({"vector_size": 3}, "embed.weight is"),  # a projection the weights file lacks
    ({"hidden_size": 256.0}, "hidden_size must be an integer"),
    ({"hidden_size": True}, "hidden_size must be an integer"),
    ({"hidden_size": "x" * 100_000}, "must be an integer from 1 to 1,048,576, not 'xxx"),
    ({"dropout": float("nan")}, "dropout must be in [0, 1)"),
    ({"tie_weights": "yes"}, "tie_weights must be true or false"),
    ({"adaptive_cutoffs": list(range(1, 1000))}, "at most 64 ids"),
    ({"adaptive_cutoffs": [float("inf")]}, "adaptive cutoffs must be integers"),
    ({"hidden_size": 2**20, "embed_size": 2**20, "num_layers": 200}, "parameters is beyond"),
    ({"hidden_size": 16384}, "rnn.weight_ih_l0 is 64x8 but config.json's model has 65536x8"),
    ({"num_layers": 2}, "no rnn.weight_ih_l1, which config.json's model has"),
    ({"cell": "gru"}, "rnn.weight_ih_l0 is 64x8 but config.json's model has 48x8"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["info", "sample", "eval"])
@pytest.mark.parametrize("model, message", ABSURD)
def test_absurd_model_configs_are_refused_fast_in_one_line(
    cli, ckpt, words_file, command, model, message
):
    edit_json(ckpt / "config.json", **{f"model__{k}": v for k, v in model.items()})
    args = {"info": [], "sample": ["-n", "5"], "eval": [words_file]}[command]
    result = cli(command, ckpt, *args)
    assert result.exit_code == 1, result.stdout
    line = the_only_line(result.stderr)
    assert message in line, line
    assert result.stdout == ""


@pytest.mark.parametrize("file", ["config.json", "meta.json"])
def test_a_number_too_long_to_read_is_one_line(cli, tmp_path, ckpt, data, file):
    where = ckpt if file == "config.json" else data
    text = (where / file).read_text()
    huge = '"schema": ' + "9" * 5000 + ', "x": '
    (where / file).write_text(text.replace('"schema": ', huge, 1))
    if file == "config.json":
        result = cli("info", ckpt)
    else:
        result = cli("train", data, "-o", tmp_path / "run", "--quiet", *TINY)
    assert result.exit_code == 1
    assert f"{file}: not " in the_only_line(result.stderr)


def test_info_reads_the_header_and_never_builds_the_model(cli, tiny_run, monkeypatch):
    built = load_checkpoint(tiny_run).model.num_parameters()

    def refuse(*_args, **_kwargs):
        raise AssertionError("info built the model")

    monkeypatch.setattr(RecurrentLM, "__init__", refuse)
    as_json = cli("info", tiny_run, "--json")
    assert as_json.exit_code == 0, as_json.stderr
    assert json.loads(as_json.stdout)["parameters"] == built
    as_text = cli("info", tiny_run)
    assert as_text.exit_code == 0, as_text.stderr
    model_line = next(line for line in as_text.stdout.splitlines() if line.startswith("model"))
    assert "1x16 LSTM, embedding 8" in model_line and f"{built:,} parameters" in model_line


def test_info_shows_unknown_for_summary_values_of_the_wrong_type(cli, ckpt):
    edit_json(ckpt / "config.json", summary__step="many", summary__elapsed_s=[1], train__ema="x")
    result = cli("info", ckpt)
    assert result.exit_code == 0, result.stderr
    assert "trained      ? steps" in result.stdout and ", - s on" in result.stdout


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(vocab_size=30, hidden_size=16, embed_size=8),
        ModelConfig(vocab_size=30, hidden_size=8, embed_size=8, tie_weights=True),
        ModelConfig(vocab_size=30, hidden_size=16, embed_size=8, tie_weights=True),
        ModelConfig(vocab_size=30, hidden_size=12, embed_size=4, num_layers=3, cell="gru"),
        ModelConfig(vocab_size=30, hidden_size=6, embed_size=4, num_layers=2, cell="rnn-tanh"),
        ModelConfig(vocab_size=90, hidden_size=32, embed_size=8, adaptive_cutoffs=[10, 40]),
        ModelConfig(vocab_size=90, hidden_size=3, embed_size=8, adaptive_cutoffs=[5, 9, 89]),
        ModelConfig(vocab_size=90, hidden_size=64, embed_size=8, cell="rnn-relu", tie_weights=True),
        ModelConfig(vocab_size=30, hidden_size=16, embed_size=8, vector_size=6, tie_weights=True),
        ModelConfig(vocab_size=30, hidden_size=16, embed_size=8, vector_size=6),
        ModelConfig(vocab_size=30, hidden_size=6, embed_size=8, vector_size=6, tie_weights=True),
    ],
)
def test_weight_shapes_are_those_of_the_saved_model(tmp_path, config):
    from safetensors import safe_open
    from safetensors.torch import save_model

    model = RecurrentLM(config)
    save_model(model, str(tmp_path / "w.safetensors"))
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as f:
        saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    assert config.weight_shapes() == saved
    assert config.parameter_count() == model.num_parameters()


def _resave(ckpt: Path, change) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(ckpt / "model.safetensors")
    change(tensors)
    save_file(tensors, ckpt / "model.safetensors")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.update(extra=torch.zeros(3)), "holds extra, which config.json's model has"),
        (lambda t: t.pop("head.bias"), "no head.bias, which config.json's model has"),
        (
            lambda t: t.update({"head.bias": t["head.bias"].to(torch.int64)}),
            "head.bias holds I64, not weights",
        ),
        (
            lambda t: t.update({"head.bias": t["head.bias"][:-1]}),
            "head.bias is 29 but config.json's model has 30",
        ),
        (
            lambda t: t["rnn.weight_hh_l0"].__setitem__((0, 0), float("nan")),
            "rnn.weight_hh_l0 holds NaN or infinite values",
        ),
    ],
)
def test_weights_that_do_not_match_the_config_are_refused(cli, ckpt, change, message):
    vocab = json.loads((ckpt / "config.json").read_text())["model"]["vocab_size"]
    _resave(ckpt, change)
    result = cli("sample", ckpt, "-n", "5")
    assert result.exit_code == 1
    assert message.replace("30", str(vocab)).replace("29", str(vocab - 1)) in (
        the_only_line(result.stderr)
    )


@pytest.mark.parametrize(
    "values",
    [
        {"hidden_size": 10**100},
        {"num_layers": 257},
        {"vocab_size": 2**32 + 1},
        {"hidden_size": 2**16, "num_layers": 200},  # 2**42 parameters
        {"dropout": True},
        {"weight_drop": "0.1"},
        {"cell": ["lstm"]},
        {"adaptive_cutoffs": "12"},
        {"adaptive_cutoffs": [2.5]},
    ],
)
def test_model_config_bounds(values):
    with pytest.raises(ValueError):
        ModelConfig(**{"vocab_size": 100, **values})


def test_model_config_from_something_not_an_object_is_a_type_error():
    with pytest.raises(TypeError):
        ModelConfig.from_dict(["vocab_size", 10])


def test_the_shipped_schema_1_checkpoint_passes_the_door():
    contents = inspect_checkpoint(SHIPPED)
    assert contents.config["schema"] == 2 and contents.tokenizer.level == "abc"
    assert contents.parameters == load_checkpoint(SHIPPED).model.num_parameters()


# -- 7: level, tokenizer kind and weights agree --------------------------------------------------


@pytest.fixture(scope="module")
def level_files(tmp_path_factory) -> dict[str, Path]:
    paths = other_level_tokenizers(tmp_path_factory.mktemp("levels"))
    return {path.stem: path for path in paths}


def test_every_level_is_told_apart_from_every_other(level_files):
    assert sorted(level_files) == sorted(LEVELS)
    for written, path in level_files.items():
        assert levels_of(load_tokenizer(path, written)) == (written,)
        for recorded in LEVELS:
            if recorded == written:
                continue
            with pytest.raises(GenseqError):  # unreadable at that level, or refused
                check_tokenizer(load_tokenizer(path, recorded), path, "config.json")


@pytest.mark.parametrize("options", [{"lowercase": True}, {"vocab_size": 40}])
def test_text_levels_with_options_keep_their_kind(options):
    from genseq.tokenization import new_tokenizer

    for level in ("word", "bpe"):
        tokenizer = new_tokenizer(level, **options)
        tokenizer.fit(["The Night is long and we sing under a silver moon\n" * 30])
        assert levels_of(tokenizer) == (level,)


def test_the_shipped_abc_tokenizer_is_abc():
    assert levels_of(load_tokenizer(SHIPPED / "tokenizer.json", "abc")) == ("abc",)


@pytest.mark.parametrize("command", ["sample", "info"])
def test_a_character_model_said_to_be_abc_is_refused(cli, ckpt, command):
    edit_json(ckpt / "config.json", tokenizer__level="abc")
    result = cli(command, ckpt, *(["-n", "20"] if command == "sample" else []))
    assert result.exit_code == 1 and result.stdout == ""
    line = the_only_line(result.stderr)
    assert "tokenizer.json: written at the char level, but config.json says 'abc'" in line


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t["model"]["vocab"].update({"<eos>": 16384}), "token ids are not 0 to"),
        (lambda t: t["model"]["vocab"].update({"<eos>": 0, "<unk>": 1}), "are not ids 0 and 1"),
        (lambda t: t.update(version="x" * 100_000), "Unknown tokenizer version 'xxx"),
        (lambda t: t["model"]["vocab"].update(a="x" * 100_000), 'invalid type: string "xxx'),
    ],
)
def test_a_tokenizer_file_out_of_shape_is_one_short_line(cli, ckpt, change, message):
    doc = json.loads((ckpt / "tokenizer.json").read_text())
    change(doc)
    (ckpt / "tokenizer.json").write_text(json.dumps(doc))
    result = cli("sample", ckpt, "-n", "5")
    assert result.exit_code == 1
    assert message in the_only_line(result.stderr)


def test_an_abc_model_given_another_levels_tokenizer_is_refused(cli, tmp_path, level_files):
    ckpt = Path(shutil.copytree(SHIPPED, tmp_path / "folk"))
    shutil.copyfile(level_files["midi-performance"], ckpt / "tokenizer.json")
    result = cli("sample", ckpt, "-n", "20")
    assert result.exit_code == 1
    assert "written at the midi-performance level" in the_only_line(result.stderr)


def test_character_data_said_to_be_abc_is_refused_by_train(cli, tmp_path, data):
    edit_json(data / "meta.json", level="abc")
    result = cli("train", data, "-o", tmp_path / "run", "--max-steps", "2", "--quiet", *TINY)
    assert result.exit_code == 1
    assert "written at the char level, but meta.json says 'abc'" in the_only_line(result.stderr)


# -- fuzzing the two loaders ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bases(tmp_path_factory, tiny_run, tiny_data):
    return build_bases(tmp_path_factory.mktemp("fuzz"), tiny_run, tiny_data)


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_the_checkpoint_loader(bases, tmp_path, rng):
    base = rng.choice(bases.checkpoints)
    outcome = try_once(
        rng, base, tmp_path, mutate_checkpoint, load_checkpoint_fully, bases.tokenizer_files
    )
    assert outcome.kind != "failure", f"{outcome.mutations}\n{outcome.detail}"


@FUZZ
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_the_data_directory_loader(bases, tmp_path, rng):
    base = rng.choice(bases.data_dirs)
    outcome = try_once(rng, base, tmp_path, mutate_data, open_data_fully, bases.tokenizer_files)
    assert outcome.kind != "failure", f"{outcome.mutations}\n{outcome.detail}"


def test_the_fuzzers_both_load_and_refuse(bases, tmp_path):
    """A fuzzer whose mutations never bite, or always break everything, tests nothing."""
    for mutate, load in [
        (mutate_checkpoint, load_checkpoint_fully),
        (mutate_data, open_data_fully),
    ]:
        kinds = {
            try_once(random.Random(seed), base, tmp_path, mutate, load, bases.tokenizer_files).kind
            for seed in range(30)
            for base in (bases.checkpoints if mutate is mutate_checkpoint else bases.data_dirs)
        }
        assert kinds == {"loaded", "refused"}, kinds


def test_the_fuzz_judge_counts_a_traceback_as_a_failure(bases, tmp_path):
    def crash(_path):
        return math.sqrt(-1)

    outcome = try_once(random.Random(0), bases.data_dirs[0], tmp_path, mutate_data, crash, [])
    assert outcome.kind == "failure" and "ValueError" in outcome.detail
    assert not os.listdir(tmp_path)  # the damaged copy is gone
