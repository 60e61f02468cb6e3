"""The training run's parts, each on its own: state, clock, evaluation policy, NaN guard, stop
signals, save schedule, run-directory rules, resume settings and the log."""

from __future__ import annotations

import json
import math
import os
import signal
import time

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from testkit import files_below

from genseq.distributed import DistContext
from genseq.errors import GenseqError, UsageError
from genseq.plan import TrainConfig
from genseq.training import evaluation, run_dir
from genseq.training.clock import END_RESERVE_S, Clock
from genseq.training.nan_guard import MAX_SKIPS_IN_A_ROW, NanGuard
from genseq.training.resume import merge_resumed
from genseq.training.run_log import LogFile, LossMeter, read_records, truncate_log
from genseq.training.save_schedule import SaveSchedule
from genseq.training.signals import StopSignals
from genseq.training.state import TrainState

ONE_PROCESS = DistContext()
CPU = torch.device("cpu")


# -- TrainState --------------------------------------------------------------------------------
@given(
    st.integers(0, 10**9),
    st.integers(0, 100),
    st.floats(0, 20, allow_nan=False),
    st.none() | st.integers(1, 10**6),
)
def test_train_state_round_trips_through_its_saved_form(step, epoch, best, eval_size):
    state = TrainState(step=step, epoch=epoch, best_val=best, eval_size=eval_size, skipped=3)
    assert TrainState.from_dict(state.to_dict()) == state
    assert TrainState.from_dict(torch_saved(state.to_dict())) == state


def torch_saved(obj: dict) -> dict:
    """What torch.save and torch.load (weights only) give back."""
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_a_train_state_saved_without_newer_counters_starts_them_afresh():
    old = {"step": 7, "epoch": 1, "index": 3, "tokens_seen": 99, "bad_evals": 0, "best_val": 2.5}
    state = TrainState.from_dict({**old, "train_seconds": 12.0, "optimizer": {}})
    assert (state.step, state.best_val, state.train_seconds) == (7, 2.5, 12.0)
    assert (state.best_step, state.marks_done, state.skipped, state.eval_size) == (0, 0, 0, None)


def test_records_and_summary_report_the_state():
    state = TrainState(step=5, epoch=1, tokens_seen=640, best_step=4, skipped=1)
    record = state.eval_record(2.0, best=True, final=False, elapsed=1.234)
    assert record["step"] == 5 and record["tokens"] == 640 and record["elapsed"] == 1.23
    assert record["val_ppl"] == pytest.approx(math.exp(2.0))
    assert state.summary() == {
        "step": 5,
        "epoch": 1,
        "tokens_seen": 640,
        "best_step": 4,
        "skipped_steps": 1,
    }


# -- Clock -------------------------------------------------------------------------------------
def test_progress_is_the_further_of_steps_and_budget():
    now = time.perf_counter()
    assert Clock(None, 100, now).progress(25) == pytest.approx(0.25)
    assert Clock(None, None, now).progress(25) == 0.0
    late = Clock(10.0, 100, now - 8.0)  # 8 of 10 s gone, a quarter of the steps done
    assert late.progress(25) == pytest.approx(0.8, abs=0.01)
    assert Clock(10.0, 100, now - 50.0).progress(0) == 1.0


def test_earlier_sessions_count_toward_elapsed_time():
    clock = Clock(None, None, time.perf_counter(), earlier_seconds=30.0)
    assert 30.0 <= clock.elapsed() < 31.0


def test_the_budget_keeps_time_for_the_end_of_the_run():
    clock = Clock(10.0, None, time.perf_counter() - 5.0)
    clock.eval_rate = 1_000.0  # validation tokens per second
    assert clock.end_reserve(0, 0, 2_000) == pytest.approx(2.0 + END_RESERVE_S)
    assert not clock.out_of_time(0, 0, 2_000)  # 5 + 4 < 10
    assert clock.out_of_time(0, 0, 4_000)  # 5 + 6 >= 10
    assert clock.nearly_out(0, 0, 2_000)  # 5 + 2 x 4 >= 10
    assert not Clock(None, None, time.perf_counter() - 1e6).out_of_time(0, 0, 10**9)


def test_before_any_evaluation_the_reserve_comes_from_the_training_rate():
    clock = Clock(100.0, None, time.perf_counter())
    assert clock.end_reserve(1, 0, 10**6) == END_RESERVE_S  # too early to extrapolate
    clock._session = (time.perf_counter() - 1.0, 0, 0)  # 1,000 tokens trained in 1 s
    reserve = clock.end_reserve(10, 1_000, 3_000)  # evaluating runs 3x faster: 1 s
    assert reserve == pytest.approx(1.0 + END_RESERVE_S, rel=0.05)


# -- evaluation policy -------------------------------------------------------------------------
@given(st.integers(0, 10**10))
def test_the_evaluation_prefix_stays_within_its_bounds(tokens_seen):
    size = evaluation.prefix_size(tokens_seen)
    assert evaluation.EVAL_MIN_TOKENS <= size <= evaluation.EVAL_MAX_TOKENS


def test_bigger_runs_evaluate_on_no_smaller_prefixes():
    sizes = [evaluation.prefix_size(n) for n in range(0, 3_000_000, 10_000)]
    assert sizes == sorted(sizes)


def test_periodic_evaluations_come_every_n_steps_or_at_each_tenth_but_the_last():
    assert [s for s in range(1, 13) if evaluation.periodic_due(s, 0.0, 0, 4)] == [4, 8, 12]
    due, marks = [], 0
    for step in range(1, 101):
        if evaluation.periodic_due(step, step / 100, marks, None):
            due.append(step)
            marks = int(step / 100 * evaluation.EVAL_MARKS)
    assert due == [10, 20, 30, 40, 50, 60, 70, 80, 90]  # the end evaluates step 100 anyway


def test_improvement_needs_more_than_rounding():
    assert evaluation.improved(1.0, math.inf)
    assert evaluation.improved(1.0, 1.0 + 1e-3)
    assert not evaluation.improved(1.0, 1.0 + 1e-7)
    assert not evaluation.improved(math.nan, 2.0)


@pytest.mark.parametrize(
    "final, candidate, final_is_best, best",
    [
        (1.0, 2.0, True, 1.0),
        (2.0, 1.0, False, 1.0),
        (1.5, 1.5, True, 1.5),  # a tie goes to the later model
        (1.5, math.inf, True, 1.5),  # no candidate: the final model
        (math.nan, 1.0, False, 1.0),  # a broken final model never replaces best/
    ],
)
def test_the_final_choice_keeps_the_better_model_on_the_whole_split(
    final, candidate, final_is_best, best
):
    choice = evaluation.FinalChoice(final, candidate)
    assert choice.final_is_best == final_is_best
    assert choice.best_loss == best


def test_the_end_evaluates_the_whole_split_twice_only_when_a_prefix_chose_best():
    assert evaluation.end_tokens(1_000, 100, has_best=True) == 2_000
    assert evaluation.end_tokens(1_000, 100, has_best=False) == 1_000
    assert evaluation.end_tokens(1_000, 5_000, has_best=True) == 1_000  # the prefix was all
    assert evaluation.end_tokens(1_000, None, has_best=False) == 1_000


def test_the_best_summary_says_what_its_loss_was_measured_on():
    state = TrainState(best_val=2.0, eval_size=100)
    prefix = evaluation.best_summary(state, math.inf, 1_000)
    assert prefix == {"best_val_loss": 2.0, "best_measured_on": "the first 100 validation tokens"}
    whole = evaluation.best_summary(state, 2.5, 1_000)
    assert whole == {"best_val_loss": 2.5, "best_measured_on": "the whole validation split"}
    small_split = evaluation.best_summary(state, math.inf, 80)
    assert small_split["best_measured_on"] == "the whole validation split"
    assert evaluation.best_summary(TrainState(), math.inf, 0)["best_val_loss"] is None


# -- NaN guard ---------------------------------------------------------------------------------
def test_on_nan_stop_raises_at_once_with_the_step():
    with pytest.raises(GenseqError, match="non-finite at step 8"):
        NanGuard("stop").skip(7)


def test_on_nan_skip_gives_up_only_after_too_many_in_a_row():
    guard = NanGuard("skip")
    for _ in range(MAX_SKIPS_IN_A_ROW):
        guard.skip(3)
    guard.updated()  # an update went through: the count starts again
    for _ in range(MAX_SKIPS_IN_A_ROW):
        guard.skip(3)
    with pytest.raises(GenseqError, match="in a row"):
        guard.skip(3)


def test_a_non_finite_logged_mean_is_an_error():
    NanGuard.check_mean(1.5, 10)
    with pytest.raises(GenseqError, match="became inf"):
        NanGuard.check_mean(math.inf, 10)


# -- stop signals ------------------------------------------------------------------------------
def test_a_signal_asks_to_stop_once_and_a_late_second_ctrl_c_aborts():
    reasons: list[str] = []
    said: list[str] = []
    with StopSignals(reasons.append, said.append) as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # within moments: ignored, the save goes on
        assert reasons == ["terminated"] and len(said) == 1
        signals._first = time.monotonic() - 10  # a second Ctrl-C, seconds later
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


# -- save schedule -----------------------------------------------------------------------------
def test_save_every_steps_or_seconds():
    by_steps = SaveSchedule("5")
    assert [s for s in range(1, 16) if by_steps.due(s, ONE_PROCESS, CPU)] == [5, 10, 15]
    by_seconds = SaveSchedule("30s")
    assert not by_seconds.due(1, ONE_PROCESS, CPU)
    by_seconds.last_save -= 31
    assert by_seconds.due(2, ONE_PROCESS, CPU)
    by_seconds.saved()
    assert not by_seconds.due(3, ONE_PROCESS, CPU)
    assert not SaveSchedule(None).due(5, ONE_PROCESS, CPU)


# -- run directories ---------------------------------------------------------------------------
def test_a_run_directory_is_fresh_empty_or_holding_only_data(tmp_path, tiny_data):
    import shutil

    run_dir.check_fresh(tmp_path / "new")  # not there yet
    run = tmp_path / "run"
    run.mkdir()
    shutil.copytree(tiny_data, run / "data")
    run_dir.check_fresh(run)  # `genseq train` tokenized into it
    (run / "notes.txt").write_text("mine")
    with pytest.raises(GenseqError, match="not empty"):
        run_dir.check_fresh(run)
    with pytest.raises(GenseqError, match="not empty"):
        run_dir.check_overwritable(run)  # holds no run: nothing of the user's is set aside
    (run / "log.jsonl").write_text("")
    with pytest.raises(GenseqError, match="--resume"):
        run_dir.check_fresh(run)
    run_dir.check_overwritable(run)  # a training run may be replaced
    (tmp_path / "file").write_text("x")
    with pytest.raises(GenseqError, match="is a file"):
        run_dir.check_fresh(tmp_path / "file")


def test_resume_needs_a_last_checkpoint(tmp_path, tiny_run):
    assert run_dir.last_checkpoint(tiny_run) == tiny_run / "last"
    with pytest.raises(GenseqError, match="no last/ checkpoint"):
        run_dir.last_checkpoint(tmp_path)


def test_the_default_run_directory_is_named_after_the_source():
    assert run_dir.default_run_dir("corpora/lyrics.txt").as_posix() == "checkpoints/lyrics"
    assert run_dir.default_run_dir("songs/").as_posix() == "checkpoints/songs"
    assert run_dir.default_run_dir("-").as_posix() == "checkpoints/stdin"


# -- resumed settings --------------------------------------------------------------------------
def test_resume_takes_new_stopping_settings_and_refuses_others():
    saved = TrainConfig(hidden_size=64, max_steps=100, lr=1e-3, device="cpu", seed=1)
    merged = merge_resumed(
        saved, TrainConfig(max_steps=200, patience=3, device="cpu", precision="fp32", seed=9)
    )
    assert (merged.max_steps, merged.patience, merged.precision) == (200, 3, "fp32")
    assert (merged.hidden_size, merged.lr, merged.seed) == (64, 1e-3, 1)
    with pytest.raises(UsageError, match="--hidden-size 32 differs"):
        merge_resumed(TrainConfig(hidden_size=64), TrainConfig(hidden_size=32))


# -- the log -----------------------------------------------------------------------------------
def test_the_log_is_strict_json_and_a_resume_drops_later_records(tmp_path):
    path = tmp_path / "log.jsonl"
    log = LogFile(path)
    for step in (10, 20, 30):
        log.write({"kind": "eval", "step": step, "val_loss": math.nan if step == 20 else 1.0})
    log.close()
    with path.open("a") as f:
        f.write('{"kind": "train", "st')  # cut short by a crash
    records = read_records(path)
    assert [r["step"] for r in records] == [10, 20, 30]
    assert records[1]["val_loss"] is None  # NaN written as null
    truncate_log(path, 20)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [10, 20]


def test_the_loss_meter_averages_since_its_last_reading():
    meter = LossMeter(CPU, tokens_seen=0)
    for loss in (1.0, 2.0, 3.0):
        meter.add(torch.tensor(loss))
    mean, rate = meter.read(ONE_PROCESS, tokens_seen=300)
    assert mean == pytest.approx(2.0) and rate > 0
    meter.add(torch.tensor(5.0))
    assert meter.read(ONE_PROCESS, tokens_seen=400)[0] == pytest.approx(5.0)


def test_sources_that_cannot_work_fail_before_anything_is_deleted(tmp_path, tiny_run, words_file):
    run_dir.check_sources([str(words_file), "-"], deleting=None)
    with pytest.raises(GenseqError, match="no such file"):
        run_dir.check_sources([str(tmp_path / "nowhere.txt")], deleting=None)
    with pytest.raises(UsageError, match="is a training run"):
        run_dir.check_sources([str(tiny_run)], deleting=None)
    inside = tmp_path / "run" / "corpus.txt"
    inside.parent.mkdir()
    inside.write_text("text")
    with pytest.raises(UsageError, match="which --overwrite would delete"):
        run_dir.check_sources([str(inside)], deleting=tmp_path / "run")


def test_the_progress_line_says_which_evaluation_read_the_whole_split(capsys):
    from genseq.progress import RichReporter

    reporter = RichReporter(quiet=False, live=False)
    state = TrainState(step=40)
    reporter.evaluation(state.eval_record(1.5, best=True, final=False, elapsed=1.0))
    reporter.evaluation(state.eval_record(1.6, best=False, final=True, elapsed=2.0))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("eval step 40: val loss 1.5000") and lines[0].endswith("(best)")
    assert lines[1].startswith("eval step 40 on the whole split: val loss 1.6000")


# -- the run directory's lock and guard --------------------------------------------------------
def test_a_second_process_cannot_take_a_locked_run_directory(tmp_path):
    import subprocess
    import sys

    from genseq.training import run_guard

    run = tmp_path / "run"
    code = (
        "import sys; from genseq.training import run_guard\n"
        "with run_guard.locked(sys.argv[1]): pass\n"
    )
    with run_guard.locked(run):
        with run_guard.locked(run):  # the same process again: fine
            pass
        other = subprocess.run(
            [sys.executable, "-c", code, str(run)], capture_output=True, text=True
        )
        assert other.returncode != 0
        assert f"in use by another genseq process (pid {os.getpid()})" in other.stderr
    free = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True)
    assert free.returncode == 0, free.stderr  # released when the holder let go


def test_a_failed_overwrite_puts_the_old_run_back(tmp_path, tiny_run):
    import shutil

    from genseq.training import run_guard

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = files_below(run)
    with pytest.raises(GenseqError), run_guard.guarded(run, overwrite=True):
        assert not (run / "last").exists()  # set aside while the new run starts
        (run / "data").mkdir()
        (run / "data" / "meta.json").write_text("{}")
        raise GenseqError("the new run failed before its first checkpoint")
    assert files_below(run) == before and not (run / ".replaced").exists()


def test_an_overwrite_that_saves_a_checkpoint_replaces_the_old_run(tmp_path, tiny_run):
    import shutil

    from genseq.training import run_guard

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with pytest.raises(KeyboardInterrupt), run_guard.guarded(run, overwrite=True):
        shutil.copytree(tiny_run / "last", run / "last")  # the new run saved, then was stopped
        raise KeyboardInterrupt
    assert (run / "last").exists() and not (run / "best").exists()
    assert not (run / ".replaced").exists()


def test_a_fresh_run_directory_that_failed_is_removed_and_a_killed_overwrite_recovers(
    tmp_path, tiny_run
):
    import shutil

    from genseq.training import run_guard

    fresh = tmp_path / "fresh"
    with pytest.raises(GenseqError), run_guard.locked(fresh), run_guard.guarded(fresh, False):
        (fresh / "log.jsonl").write_text("")
        raise GenseqError("failed")
    assert not fresh.exists()
    killed = tmp_path / "killed"  # as a kill -9 mid-overwrite leaves it: the old run aside
    shutil.copytree(tiny_run, killed / ".replaced")
    (killed / "data").mkdir()
    run_guard.recover(killed)
    assert (killed / "last").is_dir() and not (killed / "data").exists()
    assert not (killed / ".replaced").exists()
