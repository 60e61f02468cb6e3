"""Nothing overwritten without asking: numbered files continue from the ones already in the
folders asked for (one number per tune across them), an existing tunebook gets the new tunes
appended with its X: numbers continuing, --overwrite starts again; -o - is standard output
where -o is a file or a stream, and a usage error where it is a directory."""

from __future__ import annotations

import errno
import io
import json
import os
import random
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from testkit import one_error_line, small, write_midi
from testkit import run as run_genseq

from genseq.errors import GenseqError
from genseq.fileio import atomic_write_bytes
from genseq.music.book_file import highest_x, open_book
from genseq.output_names import claim_numbers, next_number, numbered_name

FOLK = Path(__file__).resolve().parent.parent / "checkpoints" / "folk-tunes"
TUNE = ["-n", "150"]  # short tunes: the tests are about files, not music
ABC_TOOLS = pytest.mark.skipif(
    not all(map(shutil.which, ("abc2midi", "abcm2ps"))),
    reason="abc2midi and abcm2ps (Debian packages abcmidi, abcm2ps) are not installed",
)


def names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def contents(*folders: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for f in folders for p in sorted(f.iterdir())}


def x_numbers(book: str) -> list[int]:
    return [int(n) for n in re.findall(r"^X:(\d+)", book, re.MULTILINE)]


# ---------------------------------------------------------------------------------------------
# The numbering function


def test_names_have_three_digits_and_grow_past_999():
    assert numbered_name("tune", 7, ".mid") == "tune_007.mid"
    assert numbered_name("tune", 1000, ".wav") == "tune_1000.wav"


def test_the_next_number_follows_the_highest_in_any_folder_whatever_the_suffix(tmp_path):
    a, b, missing = tmp_path / "a", tmp_path / "b", tmp_path / "missing"
    a.mkdir(), b.mkdir()
    assert next_number([(a, ".mid"), (missing, ".png")]) == 1
    for name in ["tune_002.mid", "tune_999.png", "sample_5000.mid", ".tune_4000.mid.x.tmp"]:
        (a / name).write_bytes(b"x")
    (b / "tune_1000.wav").write_bytes(b"x")  # numerically, not alphabetically, the highest
    assert next_number([(a, ".mid")]) == 1000
    assert next_number([(a, ".mid"), (b, ".mid"), (missing, ".mid")]) == 1001
    assert next_number([(a, ".mid")], stem="sample") == 5001


def test_claims_that_were_not_filled_are_removed_and_written_files_stay(tmp_path):
    places = [(tmp_path / "m", ".mid"), (tmp_path / "w", ".wav")]
    for folder, _ in places:
        folder.mkdir()
    (tmp_path / "w" / "tune_003.wav").write_bytes(b"old")
    with pytest.raises(OSError), claim_numbers(places, 2) as numbers:
        assert numbers.first == 4
        assert names(tmp_path / "m") == ["tune_004.mid", "tune_005.mid"]  # claimed, empty
        atomic_write_bytes(numbers.path(0, tmp_path / "m", ".mid"), b"tune 4")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert names(tmp_path / "m") == ["tune_004.mid"]
    assert names(tmp_path / "w") == ["tune_003.wav"]
    assert (tmp_path / "m" / "tune_004.mid").read_bytes() == b"tune 4"


def test_a_name_another_run_took_after_the_scan_is_not_replaced(tmp_path, monkeypatch):
    import genseq.output_names as output_names

    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "tune_001.mid").write_bytes(b"the other run's tune")
    scans = iter([1])  # the first scan ran before the other run wrote tune_001
    real = output_names.next_number
    monkeypatch.setattr(
        output_names, "next_number", lambda *a, **k: next(scans, None) or real(*a, **k)
    )
    with claim_numbers([(folder, ".mid")], 1) as numbers:
        atomic_write_bytes(numbers.path(0, folder, ".mid"), b"ours")
    assert (folder / "tune_001.mid").read_bytes() == b"the other run's tune"
    assert (folder / "tune_002.mid").read_bytes() == b"ours"


def test_runs_racing_into_one_folder_never_replace_each_other(tmp_path):
    places = [(tmp_path / "m", ".mid"), (tmp_path / "p", ".png")]
    for folder, _ in places:
        folder.mkdir()
    start = threading.Barrier(6)

    def one_run(run: int) -> None:
        start.wait()
        with claim_numbers(places, 3) as numbers:
            for i in range(3):
                for folder, suffix in places:
                    atomic_write_bytes(numbers.path(i, folder, suffix), f"{run}/{i}".encode())

    threads = [threading.Thread(target=one_run, args=(run,)) for run in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mids = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    pngs = {p.name: p.read_bytes() for p in (tmp_path / "p").iterdir()}
    assert {n.replace(".mid", ".png"): v for n, v in mids.items()} == pngs  # one tune, one number
    runs = {
        r: sorted(n for n, v in mids.items() if v.startswith(f"{r}/".encode())) for r in range(6)
    }
    for run, run_names in runs.items():  # every tune of every run, under consecutive numbers
        assert [mids[n] for n in run_names] == [f"{run}/{i}".encode() for i in range(3)]
        numbers = [int(n[5:-4]) for n in run_names]
        assert numbers == list(range(numbers[0], numbers[0] + 3))


def test_overwrite_numbers_from_one_and_replaces(tmp_path):
    (tmp_path / "tune_001.mid").write_bytes(b"old")
    with claim_numbers([(tmp_path, ".mid")], 1, overwrite=True) as numbers:
        assert numbers.path(0, tmp_path, ".mid") == tmp_path / "tune_001.mid"


def test_a_folder_that_cannot_be_written_is_one_error_and_nothing_claimed(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    ok, locked = tmp_path / "ok", tmp_path / "locked"
    ok.mkdir(), locked.mkdir(mode=0o555)
    with pytest.raises(GenseqError, match="locked: cannot write"):
        with claim_numbers([(ok, ".mid"), (locked, ".png")], 2):
            pass
    assert names(ok) == []


# ---------------------------------------------------------------------------------------------
# The tunebook


def test_highest_x_reads_every_x_field_of_any_encoding():
    book = "X:3\nT:a\n\nX: 12\nT:caf\xe9\n\n%X:99 a comment\nX:7\n".encode("latin-1")
    assert highest_x(book) == 12
    assert highest_x(b"") == 0


def test_appending_keeps_the_old_bytes_and_a_failed_write_keeps_the_old_book(tmp_path, monkeypatch):
    path = tmp_path / "book.abc"
    old = "X:5\nT:Caf\xe9\nK:D\nDEF|]".encode("latin-1")  # not UTF-8, no final newline
    path.write_bytes(old)
    with open_book(path) as book:
        assert book.first_x == 6
        book.write("X:6\nT:new\nK:D\nabc|]\n")
    assert path.read_bytes() == old + b"\n\nX:6\nT:new\nK:D\nabc|]\n"

    def full_disk(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(GenseqError, match="No space left"), open_book(path) as book:
        book.write("X:7\nT:lost\nK:D\nabc|]\n")
    assert path.read_bytes() == before
    assert names(tmp_path) == ["book.abc"]  # no temporary file left


def test_a_book_behind_a_link_is_appended_where_the_link_points_and_keeps_its_mode(tmp_path):
    real = tmp_path / "real" / "book.abc"
    real.parent.mkdir()
    real.write_bytes(b"X:1\nT:a\nK:D\nDEF|]\n")
    real.chmod(0o640)
    link = tmp_path / "link.abc"
    link.symlink_to(real)
    with open_book(link) as book:
        book.write("X:2\nT:new\nK:D\nabc|]\n")
    assert link.is_symlink() and highest_x(real.read_bytes()) == 2
    assert real.stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------------------------------
# genseq sample on the shipped ABC model


def test_a_second_run_continues_the_numbers_shared_across_folders(cli, tmp_path):
    m, w, p = tmp_path / "m", tmp_path / "w", tmp_path / "p"
    args = ["sample", FOLK, *TUNE, "--midi", m, "--wav", w, "--png", p]
    assert cli(*args, "--num-samples", "2", "--seed", "1").exit_code == 0
    first = contents(m, w, p)
    (p / "tune_004.png").write_bytes(b"a piano roll of someone else's")  # p is ahead
    result = cli(*args, "--seed", "2")
    assert result.exit_code == 0, result.stderr
    assert names(m) == ["tune_001.mid", "tune_002.mid", "tune_005.mid"]
    assert names(w) == ["tune_001.wav", "tune_002.wav", "tune_005.wav"]
    assert names(p) == ["tune_001.png", "tune_002.png", "tune_004.png", "tune_005.png"]
    assert {k: v for k, v in contents(m, w, p).items() if k in first} == first


def test_overwrite_starts_again_at_one_and_replaces_the_book(cli, tmp_path):
    m, book = tmp_path / "m", tmp_path / "book.abc"
    args = ["sample", FOLK, *TUNE, "--midi", m, "-o", book]
    assert cli(*args, "--num-samples", "2", "--seed", "1").exit_code == 0
    old = (m / "tune_001.mid").read_bytes()
    result = cli(*args, "--seed", "2", "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert names(m) == ["tune_001.mid", "tune_002.mid"]
    assert (m / "tune_001.mid").read_bytes() != old
    text = book.read_text()
    assert x_numbers(text) == [1] and "T:genseq tune 1 (seed 2)" in text


@ABC_TOOLS
def test_a_tunebook_gets_new_tunes_appended_with_x_continuing(cli, tmp_path):
    book = tmp_path / "book.abc"
    hand = "X:17\nT:Written by hand\nM:4/4\nL:1/8\nK:G\nGABc d2B2|]\n"
    book.write_text(hand)
    args = ["sample", FOLK, *TUNE, "-o", book]
    assert cli(*args, "--num-samples", "2", "--seed", "3").exit_code == 0
    assert cli(*args, "--seed", "4").exit_code == 0
    text = book.read_text()
    assert text.startswith(hand + "\n")
    assert x_numbers(text) == [17, 18, 19, 20]
    titles = re.findall(r"^T:(.*)$", text, re.MULTILINE)[1:]
    assert titles == [
        "genseq tune 18 (seed 3)",
        "genseq tune 19 (seed 3)",
        "genseq tune 20 (seed 4)",
    ]
    midi = subprocess.run(["abc2midi", book.name], cwd=tmp_path, capture_output=True, text=True)
    assert midi.returncode == 0, midi.stdout
    assert sorted(p.name for p in tmp_path.glob("*.mid")) == [
        f"book{n}.mid" for n in (17, 18, 19, 20)
    ]
    score = subprocess.run(
        ["abcm2ps", book.name, "-O", "book.ps"], cwd=tmp_path, capture_output=True, text=True
    )
    assert score.returncode == 0 and "4 titles" in score.stdout + score.stderr, score.stderr
    assert "rror" not in score.stdout + score.stderr


def test_json_rows_carry_the_numbers_written_in_the_book(cli, tmp_path):
    book = tmp_path / "book.abc"
    book.write_text("X:1\nT:a\nK:D\nD|]\n")
    result = cli("sample", FOLK, *TUNE, "--seed", "5", "-o", book, "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["abc"].startswith("X:2\nT:genseq tune 2 (seed 5)\n")
    assert row["abc"] in book.read_text()


def test_dash_o_writes_the_tunebook_to_standard_output(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    to_stdout = cli("sample", FOLK, *TUNE, "--seed", "6", "-o", "-")
    default = cli("sample", FOLK, *TUNE, "--seed", "6")
    assert to_stdout.exit_code == 0, to_stdout.stderr
    assert to_stdout.stdout == default.stdout and x_numbers(to_stdout.stdout) == [1]
    assert names(tmp_path) == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--wav", "-"], "--wav -: give a folder"),
        (["--midi", "-"], "--midi -: give a folder"),
        (["-o", "-", "--json"], "-o - and --json both write standard output"),
        (["--overwrite"], "--overwrite: no files to overwrite"),
    ],
)
def test_misused_dashes_and_overwrite_are_usage_errors(cli, tmp_path, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    result = cli("sample", FOLK, *TUNE, *extra)
    assert result.exit_code == 2 and message in one_error_line(result.stderr)
    assert names(tmp_path) == []


def test_a_folder_that_is_a_file_is_one_error_and_nothing_is_written(cli, tmp_path):
    (tmp_path / "p").write_text("a file")
    result = cli("sample", FOLK, *TUNE, "--midi", tmp_path / "m", "--png", tmp_path / "p")
    assert result.exit_code == 1
    assert (
        one_error_line(result.stderr)
        == f"error: {tmp_path / 'p'}: not a folder (a file has that name)"
    )
    assert not (tmp_path / "m").exists() or names(tmp_path / "m") == []


def test_a_tunebook_that_is_a_folder_is_one_error_before_sampling(cli, tmp_path):
    result = cli("sample", FOLK, *TUNE, "-o", tmp_path)
    assert result.exit_code == 1
    assert (
        one_error_line(result.stderr) == f"error: {tmp_path}: is a folder; -o takes a tunebook file"
    )
    assert names(tmp_path) == [] and "seed:" not in result.stderr


def test_a_tunebook_below_a_file_is_one_error_before_sampling(cli, tmp_path):
    (tmp_path / "afile").write_text("")
    result = cli("sample", FOLK, *TUNE, "-o", tmp_path / "afile" / "book.abc")
    assert result.exit_code == 1
    assert "afile: not a folder" in one_error_line(result.stderr)
    assert "seed:" not in result.stderr and names(tmp_path) == ["afile"]


def test_a_write_failing_midway_leaves_only_whole_files(cli, tmp_path, monkeypatch):
    from genseq.music import render

    written = []

    def full_disk_on_the_second(notes, path, **kwargs):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        return real(notes, path, **kwargs)

    real = render.write_wav
    monkeypatch.setattr(render, "write_wav", full_disk_on_the_second)
    m, w = tmp_path / "m", tmp_path / "w"
    result = cli("sample", FOLK, *TUNE, "--num-samples", "3", "--midi", m, "--wav", w)
    assert result.exit_code == 1 and "No space left" in one_error_line(result.stderr)
    assert names(m) == ["tune_001.mid", "tune_002.mid"]  # tune 2's MIDI came before its WAV
    assert names(w) == ["tune_001.wav"]
    assert all(p.stat().st_size > 0 for p in [*m.iterdir(), *w.iterdir()])


def test_a_read_only_folder_is_one_error_and_nothing_written(cli, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    m, p = tmp_path / "m", tmp_path / "p"
    p.mkdir(mode=0o555)
    result = cli("sample", FOLK, *TUNE, "--midi", m, "--png", p)
    assert result.exit_code == 1 and "cannot write" in one_error_line(result.stderr)
    assert names(m) == [] and names(p) == []


# ---------------------------------------------------------------------------------------------
# Text models, MIDI models, tokenize and train


def test_a_text_model_takes_dash_o_as_standard_output_only(cli, tiny_run, tmp_path):
    args = ["sample", tiny_run, "-n", "20", "--seed", "1"]
    to_stdout = cli(*args, "-o", "-")
    assert to_stdout.exit_code == 0 and to_stdout.stdout == cli(*args).stdout
    refused = cli(*args, "-o", tmp_path / "out.txt")
    assert refused.exit_code == 2 and "standard output only" in one_error_line(refused.stderr)


@pytest.mark.parametrize("command", ["tokenize", "train"])
def test_tokenize_and_train_refuse_dash_o(cli, words_file, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = cli(command, words_file, "-o", "-")
    assert result.exit_code == 2
    assert one_error_line(result.stderr).startswith("error: -o -: ")
    assert names(tmp_path) == []


@pytest.fixture(scope="module")
def melody_run(tmp_path_factory) -> Path:
    """A tiny midi-melody run: a handful of scale tunes, a few training steps."""
    from genseq.data import open_data
    from genseq.train import Trainer

    folder = tmp_path_factory.mktemp("melodies")
    (folder / "midi").mkdir()
    rng = random.Random(1)
    for k in range(6):
        notes, now = [], 0.0
        for _ in range(24):
            notes.append((rng.choice([62, 64, 66, 67, 69, 71, 73, 74]), now, now + 0.25))
            now += 0.25
        write_midi(folder / "midi" / f"t{k}.mid", [{"name": "Tune", "notes": notes}])
    data = folder / "data"
    result = run_genseq("tokenize", folder / "midi", "-o", data, "--quiet", text=True)
    assert result.returncode == 0, result.stderr
    cfg = small(hidden_size=16, num_layers=1, embed_size=8, seq_len=32, batch_size=4, max_steps=5)
    Trainer(cfg, open_data(data), folder / "run").run()
    return folder / "run"


@pytest.mark.slow
def test_a_midi_model_writes_one_mid_to_standard_output(melody_run, tmp_path):
    import mido

    args = ["sample", melody_run, "--seed", "3", "--num-steps", "32"]
    piped = run_genseq(*args, "-o", "-", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert names(tmp_path) == []
    assert run_genseq(*args, "--midi", tmp_path / "m").returncode == 0
    assert piped.stdout == (tmp_path / "m" / "sample_001.mid").read_bytes()
    assert len(mido.MidiFile(file=io.BytesIO(piped.stdout)).tracks) >= 1
    two = run_genseq(*args, "-o", "-", "--num-samples", "2", text=True)
    assert two.returncode == 2 and "one .mid" in one_error_line(two.stderr)


@pytest.mark.slow
def test_a_midi_model_continues_the_sample_numbers(melody_run, tmp_path):
    args = [
        "sample",
        melody_run,
        "--num-steps",
        "16",
        "-o",
        tmp_path / "m",
        "--png",
        tmp_path / "p",
    ]
    assert run_genseq(*args, "--num-samples", "2", "--seed", "1").returncode == 0
    assert run_genseq(*args, "--seed", "2").returncode == 0
    assert names(tmp_path / "m") == ["sample_001.mid", "sample_002.mid", "sample_003.mid"]
    assert names(tmp_path / "p") == ["sample_001.png", "sample_002.png", "sample_003.png"]
