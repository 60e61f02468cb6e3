"""The CLI as users run it: pipelines, JSON, exit codes, bad input, Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time

import pytest
from testkit import GENSEQ, TINY, files_below, one_error_line, run

from genseq.checkpoint import load_checkpoint


def test_help_lists_exactly_the_registered_commands(cli):
    from genseq.commands.main import COMMANDS, GROUPS

    result = cli("--help")
    assert result.exit_code == 0
    listed = []
    in_commands = False
    for line in result.stdout.splitlines():
        if line.strip() == "Commands:":
            in_commands = True
        elif line and not line.startswith(" "):  # the next section (Examples)
            in_commands = False
        elif in_commands and line.startswith("  ") and line.strip():
            listed.append(line.split()[0])
    assert sorted(listed) == sorted([*COMMANDS, *GROUPS])
    assert "list" in cli("corpus", "--help").stdout


def test_stdin_tokenize_train_sample_pipeline(tmp_path, words_file):
    data = tmp_path / "data"
    tok = run("tokenize", "-", "-o", data, "--json", input=words_file.read_bytes())
    assert tok.returncode == 0, tok.stderr
    summary = json.loads(tok.stdout)
    assert summary["characters"] == len(words_file.read_text())
    assert "vocabulary" in tok.stderr.decode()  # the summary table goes to stderr
    train = run("train", data, "-o", tmp_path / "run", "--max-steps", "20", "--json", *TINY)
    assert train.returncode == 0, train.stderr
    result = json.loads(train.stdout)
    assert result["step"] == 20 and result["stop_reason"] == "max_steps"
    best = f"{result['best_val_loss']:.4f} on the whole validation split"
    done = f"commands use {tmp_path / 'run' / 'best'} (step {result['best_step']}): "
    assert done + "validation loss " + best in train.stderr.decode()
    shell = f"'{GENSEQ}' sample '{tmp_path / 'run'}' -n 100000 -s 1 | head -c 10"
    piped = subprocess.run(shell, shell=True, capture_output=True, timeout=120)
    assert len(piped.stdout) == 10
    assert piped.stderr == b""  # a closed pipe ends quietly


def test_sample_stdout_is_only_the_text(cli, tiny_run):
    from genseq.generate import generate
    from genseq.sample import SamplingSettings

    result = cli("sample", tiny_run, "-p", "the ", "-n", "40", "-s", "5", "--temperature", "0.7")
    assert result.exit_code == 0, result.stderr
    expected = generate(
        load_checkpoint(tiny_run),
        "the ",
        SamplingSettings(temperature=0.7),
        max_new_tokens=40,
        seed=5,
    )[0].text
    text = "the " + expected
    assert result.stdout == (text if text.endswith("\n") else text + "\n")
    again = cli("sample", tiny_run, "-p", "the ", "-n", "40", "-s", "5", "--temperature", "0.7")
    assert again.stdout == result.stdout


def test_sample_json_and_several_samples(cli, tiny_run, tmp_path):
    result = cli("sample", tiny_run, "-n", "30", "--num-samples", "3", "-s", "1", "--json")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert all(r["tokens"] <= 30 and r["seed"] == 1 for r in rows)
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("we sing")
    from_file = cli("sample", tiny_run, "-f", prompt, "-n", "5", "-s", "1", "--json")
    assert json.loads(from_file.stdout)["prompt"] == "we sing"
    from_stdin = cli("sample", tiny_run, "-f", "-", "-n", "5", "-s", "1", "--json", input="we sing")
    assert json.loads(from_stdin.stdout) == json.loads(from_file.stdout)
    greedy = cli("sample", tiny_run, "-n", "20", "--greedy", "--json", "-s", "1")
    top1 = cli("sample", tiny_run, "-n", "20", "--top-k", "1", "--json", "-s", "2")
    assert json.loads(greedy.stdout)["text"] == json.loads(top1.stdout)["text"]


def test_unknown_prompt_characters_are_reported_not_fatal(cli, tiny_run):
    result = cli("sample", tiny_run, "-p", "Ωß", "-n", "5", "-s", "1")
    assert result.exit_code == 0
    assert "never saw" in result.stderr
    assert result.stdout.startswith("Ωß")


def test_eval_and_info(cli, tiny_run, words_file):
    result = cli("eval", tiny_run, words_file, "--json")
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    chars = len(words_file.read_text())
    assert row["tokens"] == chars  # every character predicted once
    assert row["bits_per_character"] == pytest.approx(row["loss"] / 0.6931471805599453)
    info = cli("info", tiny_run, "--json")
    data = json.loads(info.stdout)
    assert data["parameters"] > 0 and data["summary"]["step"] == 30
    info = cli("info", tiny_run).stdout
    assert "LSTM" in info
    best = data["summary"]["best_step"]
    assert data["summary"]["best_measured_on"] == "the whole validation split"
    assert f"(best: step {best:,}, " in info and "on the whole validation split)" in info


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["sample", "RUN", "--temperature", "-1"], 2, "--temperature"),
        (["sample", "RUN", "--top-k", "0"], 2, "--top-k"),
        (["sample", "RUN", "--top-p", "0"], 2, "--top-p"),
        (["sample", "RUN", "--top-p", "1.5"], 2, "--top-p"),
        (["sample", "RUN", "-n", "0"], 2, "--max-new-tokens"),
        (["sample", "RUN", "-p", "a", "-f", "x"], 2, "not both"),
        (["sample", "NOWHERE"], 1, "no such checkpoint"),
        (["sample", "EMPTYDIR"], 1, "not a genseq checkpoint"),
        (["train", "DATA", "--seq-len", "0"], 2, "--seq-len"),
        (["train", "DATA", "--dropout", "1.5"], 2, "--dropout"),
        (["train", "DATA", "--weight-drop", "1"], 2, "--weight-drop"),
        (["train", "DATA", "--device", "cuda:7"], 2, "--device"),
        (["train", "DATA", "--ema", "1"], 2, "--ema"),
        (["tokenize", "DATA", "-o", "OUT", "--fit-sample", "-1"], 2, "--fit-sample"),
        (["train", "NOWHERE.txt"], 1, "no such file"),
        (["tokenize", "NOWHERE.txt", "-o", "OUT"], 1, "no such file"),
        (["eval", "RUN", "NOWHERE.txt"], 1, "no such file"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    cli, tmp_path, tiny_run, tiny_data, args, code, message
):
    (tmp_path / "empty").mkdir()
    subst = {
        "RUN": str(tiny_run),
        "DATA": str(tiny_data),
        "NOWHERE": str(tmp_path / "nope"),
        "NOWHERE.txt": str(tmp_path / "nope.txt"),
        "EMPTYDIR": str(tmp_path / "empty"),
        "OUT": str(tmp_path / "out"),
    }
    result = cli(*[subst.get(a, a) for a in args], "--quiet")
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert message in one_error_line(result.stderr)
    assert result.stdout == ""


def test_bad_corpora(cli, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "song.mp3"
    binary.write_bytes(b"ID3\x00\x00\x01" + bytes(range(256)) * 10)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café au lait\n".encode("latin-1") * 20)
    out = tmp_path / "out"
    for source, message in [(empty, "empty"), (binary, "binary"), (latin, "--encoding-errors")]:
        result = cli("tokenize", source, "-o", out)
        assert result.exit_code == 1
        assert message in one_error_line(result.stderr)
        assert not out.exists()
    replaced = cli("tokenize", latin, "-o", out, "--encoding-errors", "replace", "--json")
    assert replaced.exit_code == 0
    assert json.loads(replaced.stdout)["characters"] == len("caf\ufffd au lait\n") * 20


def test_foreign_data_directory(cli, tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "meta.json").write_text('{"format": "something-else"}')
    result = cli("train", folder, "-o", tmp_path / "run", "--quiet")
    assert result.exit_code == 1
    assert "not from a genseq data directory" in one_error_line(result.stderr)


def test_an_existing_run_needs_resume_or_overwrite(cli, tmp_path, tiny_data):
    run_dir = tmp_path / "run"
    first = cli("train", tiny_data, "-o", run_dir, "--max-steps", "3", "--quiet", *TINY)
    assert first.exit_code == 0, first.stderr
    again = cli("train", tiny_data, "-o", run_dir, "--max-steps", "3", "--quiet", *TINY)
    assert again.exit_code == 1 and "--resume" in one_error_line(again.stderr)
    resumed = cli(
        "train", tiny_data, "-o", run_dir, "--resume", "--max-steps", "6", "--json", "--quiet"
    )
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["step"] == 6
    fresh = cli(
        "train",
        tiny_data,
        "-o",
        run_dir,
        "--overwrite",
        "--max-steps",
        "2",
        "--json",
        "--quiet",
        *TINY,
    )
    assert fresh.exit_code == 0 and json.loads(fresh.stdout)["step"] == 2


@pytest.mark.slow
def test_ctrl_c_saves_and_exits_130(tmp_path, tiny_data):
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            GENSEQ,
            "train",
            str(tiny_data),
            "-o",
            str(run_dir),
            "--max-steps",
            "1000000",
            "--eval-every",
            "20",
            *TINY,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    log = run_dir / "log.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and not (log.exists() and '"eval"' in log.read_text()):
        time.sleep(0.2)
    assert log.exists(), "training never logged an evaluation"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    last = load_checkpoint(run_dir / "last")
    summary = last.config["summary"]
    assert summary["stop_reason"] == "interrupted" and summary["step"] >= 20
    resumed = run(
        "train",
        tiny_data,
        "-o",
        run_dir,
        "--resume",
        "--max-steps",
        summary["step"] + 5,
        "--json",
        "--quiet",
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["step"] == summary["step"] + 5


def test_overwrite_checks_before_it_deletes(cli, tmp_path, tiny_data):
    run_dir = tmp_path / "run"
    assert (
        cli("train", tiny_data, "-o", run_dir, "--max-steps", "2", "--quiet", *TINY).exit_code == 0
    )
    for args, code in [
        (["train", tmp_path / "missing.txt", "-o", run_dir, "--overwrite"], 1),
        (["train", tiny_data, "-o", run_dir, "--overwrite", "--device", "cuda:9"], 2),
        (["train", run_dir, "-o", tmp_path / "other"], 2),  # a run given as data
    ]:
        result = cli(*args, "--quiet")
        assert result.exit_code == code
        one_error_line(result.stderr)
        assert (run_dir / "last" / "model.safetensors").exists()  # nothing was deleted


def test_prompts_that_are_not_valid_utf8(cli, tiny_run):
    bad = "ab" + b"\xff".decode("utf-8", "surrogateescape")  # as argv delivers such bytes
    result = cli("sample", tiny_run, "-p", bad, "-n", "3", "-s", "1")
    assert result.exit_code == 1 and "--encoding-errors" in one_error_line(result.stderr)
    fixed = cli(
        "sample",
        tiny_run,
        "-p",
        bad,
        "-n",
        "3",
        "-s",
        "1",
        "--encoding-errors",
        "replace",
        "--json",
    )
    assert json.loads(fixed.stdout)["prompt"] == "ab\ufffd"


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_sampling_settings_are_refused(cli, tiny_run, value):
    for option in ("--temperature", "--repetition-penalty", "--top-p"):
        result = cli("sample", tiny_run, option, value, "-n", "3")
        assert result.exit_code == 2 and "finite" in one_error_line(result.stderr)


def test_a_tiny_temperature_is_greedy_not_a_crash(cli, tiny_run):
    tiny = cli("sample", tiny_run, "-n", "30", "--temperature", "1e-40", "-s", "1", "--json")
    greedy = cli("sample", tiny_run, "-n", "30", "--greedy", "-s", "2", "--json")
    assert tiny.exit_code == 0, tiny.stderr
    assert json.loads(tiny.stdout)["text"] == json.loads(greedy.stdout)["text"]


def test_json_is_strict_without_a_validation_split(cli, tmp_path, words_file):
    data = tmp_path / "d"
    assert cli("tokenize", words_file, "-o", data, "--val-fraction", "0", "-q").exit_code == 0
    result = cli(
        "train", data, "-o", tmp_path / "r", "--max-steps", "3", "--json", "--quiet", *TINY
    )
    assert result.exit_code == 0, result.stderr

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    assert json.loads(result.stdout, parse_constant=refuse)["val_loss"] is None
    config = (tmp_path / "r" / "last" / "config.json").read_text()
    json.loads(config, parse_constant=refuse)


def test_resume_refuses_other_data(cli, tmp_path, tiny_data, words_file):
    run_dir = tmp_path / "run"
    assert (
        cli("train", tiny_data, "-o", run_dir, "--max-steps", "2", "--quiet", *TINY).exit_code == 0
    )
    other = tmp_path / "other"
    assert cli("tokenize", words_file, "-o", other, "--level", "word", "-q").exit_code == 0
    result = cli("train", other, "-o", run_dir, "--resume", "--max-steps", "4", "--quiet")
    assert result.exit_code == 1 and "another tokenizer" in one_error_line(result.stderr)


def test_a_hand_edited_config_is_a_clear_error(cli, tmp_path, tiny_run):
    import shutil

    broken = tmp_path / "ckpt"
    shutil.copytree(tiny_run / "best", broken)
    config = json.loads((broken / "config.json").read_text())
    config["model"]["hidden_size"] = -5
    (broken / "config.json").write_text(json.dumps(config))
    for command in ("sample", "info"):
        result = cli(command, broken)
        assert result.exit_code == 1 and "no valid model" in one_error_line(result.stderr)


def test_eval_results_go_to_stdout(cli, tiny_run, words_file):
    result = cli("eval", tiny_run, words_file)
    assert result.exit_code == 0
    assert "bits/char" in result.stdout and "Traceback" not in result.stderr


@pytest.mark.slow
def test_usage_errors_are_one_line_too():
    """Click's own errors (unknown option, missing argument, bad number) from the real entry
    point: one `error:` line and exit code 2."""
    for args in (["sample"], ["sample", "x", "-n", "abc"], ["--foo"], ["train", "--nope"]):
        done = run(*args)
        assert done.returncode == 2
        line = one_error_line(done.stderr.decode())
        assert "--help" in line


def test_less_common_training_options_take_effect(cli, tmp_path, tiny_data):
    run_dir = tmp_path / "run"
    result = cli(
        "train",
        tiny_data,
        "-o",
        run_dir,
        "--max-steps",
        "12",
        "--eval-every",
        "4",
        "--cell",
        "rnn-relu",
        "--layers",
        "2",
        "--hidden-size",
        "16",
        "--embed-size",
        "16",
        "--tie-weights",
        "--optimizer",
        "adam",
        "--schedule",
        "plateau",
        "--clip-value",
        "0.5",
        "--sample-tokens",
        "20",
        "--seq-len",
        "16",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("\nsample: ") == 3  # after the evaluations at steps 4, 8, 12
    info = json.loads(cli("info", run_dir, "--json").stdout)
    assert info["model"]["cell"] == "rnn-relu" and info["model"]["num_layers"] == 2
    assert info["model"]["tie_weights"] is True
    assert info["train"]["optimizer"] == "adam" and info["train"]["schedule"] == "plateau"
    assert info["train"]["clip_value"] == 0.5
    model = load_checkpoint(run_dir).model
    assert model.head.weight is model.embed.weight


def test_word_model_with_an_adaptive_softmax_trains_evaluates_and_samples(
    cli, tmp_path, words_file
):
    data = tmp_path / "words"
    assert cli("tokenize", words_file, "-o", data, "--level", "word", "-q").exit_code == 0
    run_dir = tmp_path / "run"
    result = cli(
        "train", data, "-o", run_dir, "--max-steps", "150", "--adaptive-softmax", "6,12",
        "--json", *TINY,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout.strip().splitlines()[-1])
    assert done["val_loss"] < math.log(json.loads((data / "meta.json").read_text())["vocab_size"])
    config = json.loads((run_dir / "best" / "config.json").read_text())
    assert config["model"]["adaptive_cutoffs"] == [6, 12]
    result = cli("sample", run_dir, "-n", "20", "--seed", "1")
    assert result.exit_code == 0 and result.stdout.strip(), result.stderr
    result = cli("eval", run_dir, words_file)
    assert result.exit_code == 0, result.stderr
    for bad in ("20,10", "many"):
        result = cli("train", data, "-o", tmp_path / "x", "--adaptive-softmax", bad, "-q")
        assert result.exit_code == 2 and "--adaptive-softmax" in one_error_line(result.stderr)


def test_precision_is_a_train_flag_shown_by_info(cli, tmp_path, tiny_data):
    run_dir = tmp_path / "run"
    result = cli(
        "train", tiny_data, "-o", run_dir, "--max-steps", "3", "--precision", "bf16", *TINY
    )
    assert result.exit_code == 0, result.stderr
    assert "bf16 autocast" in result.stderr  # the plan says how it trains
    assert "bf16" in cli("info", run_dir).stdout
    result = cli("train", tiny_data, "-o", tmp_path / "x", "--precision", "fp16", "-q")
    assert result.exit_code == 2 and "'--precision'" in result.stderr  # a checked choice


def test_weight_drop_is_a_train_flag_saved_and_shown(cli, tmp_path, tiny_data):
    run_dir = tmp_path / "run"
    result = cli(
        "train", tiny_data, "-o", run_dir, "--max-steps", "3", "--weight-drop", "0.25", *TINY
    )
    assert result.exit_code == 0, result.stderr
    assert "weight drop 0.25" in result.stderr  # the plan line
    config = json.loads((run_dir / "best" / "config.json").read_text())
    assert config["model"]["weight_drop"] == 0.25
    assert "weight drop 0.25" in cli("info", run_dir).stdout
    assert load_checkpoint(run_dir).model.config.weight_drop == 0.25


def test_the_weight_average_and_the_fit_sample_are_flags_that_say_what_they_did(
    cli, tmp_path, tiny_data
):
    run_dir = tmp_path / "run"
    result = cli("train", tiny_data, "-o", run_dir, "--max-steps", "4", "--ema", "0.9", *TINY)
    assert result.exit_code == 0, result.stderr
    assert "weight average 0.9 from halfway" in result.stderr
    assert "weight average (decay 0.9)" in cli("info", run_dir).stdout
    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(8):
        (songs / f"{i}.txt").write_text(f"song {i}\nla la la\n" * 20)
    size = sum(p.stat().st_size for p in songs.iterdir()) / 1e6
    sample = ["--level", "word", "--fit-sample", size / 4]
    result = cli("tokenize", songs, "-o", tmp_path / "d", *sample)
    assert result.exit_code == 0, result.stderr
    assert "25.0% of the text" in result.stderr and "vocabulary from" in result.stderr


def test_train_and_tokenize_validate_on_the_files_given_with_val(cli, tmp_path, words_file):
    held_out = tmp_path / "held-out.txt"
    held_out.write_text("a held-out verse\n" * 30, encoding="utf-8")
    run_dir = tmp_path / "run"
    args = ["train", words_file, "--val", held_out, "-o", run_dir, "--max-steps", "4"]
    result = cli(*args, "--json", *TINY)
    assert result.exit_code == 0, result.stderr
    meta = json.loads((run_dir / "data" / "meta.json").read_text())
    assert meta["split"] == "files"
    assert [s["split"] for s in meta["sources"]] == ["train", "val"]
    assert meta["splits"]["val"]["tokens"] == len("a held-out verse\n" * 30) + 2  # <eos> both ends
    assert "validation from" in result.stderr  # the tokenize summary shows the split
    again = cli("train", run_dir / "data", "--val", held_out, "-o", tmp_path / "r2")
    assert again.exit_code == 2 and "--val needs raw sources" in one_error_line(again.stderr)
    split = cli(
        "tokenize", words_file, "--val", held_out, "--split", "document", "-o", tmp_path / "d"
    )
    assert split.exit_code == 2 and "drop --split document" in one_error_line(split.stderr)
    missing = cli("tokenize", words_file, "--val", tmp_path / "nowhere.txt", "-o", tmp_path / "d")
    assert missing.exit_code == 1 and "nowhere.txt" in one_error_line(missing.stderr)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    "bad, code",
    [
        (["SOURCE_BINARY"], 1),  # fails while tokenizing, after the old run was set aside
        (["WORDS", "--seq-len", "1000000"], 2),  # fails when the plan meets the data
    ],
)
def test_a_failed_overwrite_keeps_the_old_run_and_a_failed_fresh_run_leaves_nothing(
    cli, tmp_path, tiny_run, words_file, bad, code
):
    import shutil

    binary = tmp_path / "binary.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    args = [
        str(binary) if a == "SOURCE_BINARY" else str(words_file) if a == "WORDS" else a for a in bad
    ]
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = files_below(run)
    result = cli("train", *TINY, *args, "-o", run, "--overwrite", "--max-steps", "2")
    assert result.exit_code == code
    one_error_line(result.stderr)
    assert files_below(run) == before and not (run / ".replaced").exists()
    fresh = cli("train", *TINY, *args, "-o", tmp_path / "fresh", "--max-steps", "2")
    assert fresh.exit_code == code and not (tmp_path / "fresh").exists()


def test_two_trainings_on_one_run_directory_are_refused(tmp_path, tiny_data):
    run = tmp_path / "run"
    first = subprocess.Popen(
        [GENSEQ, "train", str(tiny_data), "-o", str(run), "--max-steps", "100000", *TINY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (run / "log.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # the first run is training
        for extra in ([], ["--resume"], ["--overwrite"]):
            second = run_genseq_quietly(tiny_data, run, extra)
            assert second.returncode == 1, second.stderr
            line = one_error_line(second.stderr)
            assert f"in use by another genseq process (pid {first.pid})" in line
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 143
    assert (run / "last").is_dir()  # the first run saved and ended as it should


def run_genseq_quietly(data, run_dir, extra: list[str]) -> subprocess.CompletedProcess:
    return run(
        "train", data, "-o", run_dir, "--max-steps", "3", "--quiet", *TINY, *extra, text=True
    )


def test_file_names_that_are_not_utf8_are_read_and_shown(tmp_path, words_file):
    folder = os.fsencode(tmp_path / "songs")
    os.mkdir(folder)
    name = os.path.join(folder, b"caf\xe9.txt")  # Latin-1 bytes: not a UTF-8 name
    try:
        with open(name, "wb") as f:
            f.write(words_file.read_bytes())
    except OSError:
        pytest.skip("this file system refuses file names that are not UTF-8")
    tok = run("tokenize", os.fsdecode(folder), "-o", tmp_path / "data", "--json")
    assert tok.returncode == 0, tok.stderr
    meta = json.loads((tmp_path / "data" / "meta.json").read_text("utf-8"))
    assert meta["sources"][0]["name"].endswith("caf\ufffd.txt")
    run_dir = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"run\xe9"))
    train = run("train", os.fsdecode(name), "-o", run_dir, "--max-steps", "2", "--json", *TINY)
    assert train.returncode == 0, train.stderr
    assert json.loads(train.stdout)["run"].endswith("run\ufffd")


@pytest.mark.parametrize(
    "args",
    [
        ["info", "RUN"],
        ["corpus", "fetch", "folk-abc"],
        ["corpus", "list"],
        ["sample", "RUN", "-n", "5"],
        ["eval", "RUN", "WORDS"],
    ],
)
def test_a_result_nobody_can_read_is_an_error(tiny_run, words_file, args):
    args = [str(tiny_run) if a == "RUN" else str(words_file) if a == "WORDS" else a for a in args]
    closed = subprocess.run(
        [GENSEQ, *args], stdout=None, capture_output=False, stderr=subprocess.PIPE,
        text=True, timeout=120, preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert closed.returncode == 1
    assert one_error_line(closed.stderr) == "error: standard output is closed"


def test_tokenize_replaces_a_data_directory_only_with_overwrite(cli, tmp_path, words_file):
    data = tmp_path / "data"
    assert cli("tokenize", words_file, "-o", data, "-q").exit_code == 0
    before = files_below(data)
    again = cli("tokenize", words_file, "-o", data, "--level", "word", "-q")
    assert again.exit_code == 1 and "--overwrite" in one_error_line(again.stderr)
    assert files_below(data) == before
    replaced = cli("tokenize", words_file, "-o", data, "--level", "word", "-q", "--overwrite")
    assert replaced.exit_code == 0
    assert json.loads((data / "meta.json").read_text())["level"] == "word"


def test_a_symbolic_link_loop_is_named_as_such(cli, tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for command in (["tokenize", tmp_path / "a", "-o", tmp_path / "d"], ["train", tmp_path / "a"]):
        result = cli(*command)
        assert result.exit_code == 1
        assert "a symbolic link that leads nowhere" in one_error_line(result.stderr)
