"""`genseq sample`'s request: checked when made, options refused by name, one seed shown."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from genseq.commands.sample_request import SampleRequest, seed_for

from genseq.errors import UsageError
from genseq.sample import SamplingSettings


def request(**fields) -> SampleRequest:
    return SampleRequest(settings=SamplingSettings(), **fields)


@pytest.mark.parametrize(
    "fields, flag",
    [
        ({"settings": SamplingSettings(top_k=0)}, "--top-k"),
        ({"max_new_tokens": 0}, "--max-new-tokens"),
        ({"num_samples": 0}, "--num-samples"),
        ({"tempo": 0.0}, "--tempo"),
        ({"tempo": float("nan")}, "--tempo"),
        ({"program": 128}, "--program"),
        ({"program": -1}, "--program"),
    ],
)
def test_a_request_is_checked_when_made_and_when_changed(fields, flag):
    with pytest.raises(UsageError, match=flag):
        SampleRequest(**{"settings": SamplingSettings(), **fields})
    with pytest.raises(UsageError, match=flag):
        dataclasses.replace(request(), **fields)


def test_a_request_cannot_be_changed_in_place():
    with pytest.raises(dataclasses.FrozenInstanceError):
        request().seed = 3  # type: ignore[misc]


def test_refuse_names_every_given_option_in_the_order_asked():
    r = request(prompt="x", wav=Path("w"), meter="6/8", num_steps=0)
    fields = ("prompt", "stop", "meter", "key", "wav", "num_steps")
    with pytest.raises(UsageError) as caught:
        r.refuse(fields, "not here")
    assert str(caught.value) == "--prompt/--prompt-file, --meter, --wav, --num-steps: not here"
    request(prompt="", stop=()).refuse(fields, "an empty prompt or stop list is not given")
    request(program=0, seconds=0.0).refuse(("meter",), "only fields asked about count")
    with pytest.raises(UsageError, match="^--program, --seconds: zero is given$"):
        request(program=0, seconds=0.0).refuse(("program", "seconds"), "zero is given")


def test_a_given_seed_is_used_silently_and_a_drawn_one_is_shown(capsys):
    assert seed_for(request(seed=0)) == 0
    assert capsys.readouterr().err == ""
    seed = seed_for(request())
    assert 0 <= seed < 2**31
    assert capsys.readouterr().err == f"seed: {seed}\n"
    seed_for(request(quiet=True))
    assert capsys.readouterr().err == ""


def test_the_shown_seed_repeats_a_text_sample(cli, tiny_run):
    args = ("sample", tiny_run, "-n", "40", "--num-samples", "2")
    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    (line,) = first.stderr.splitlines()
    seed = int(re.fullmatch(r"seed: (\d+)", line).group(1))
    again = cli(*args, "--seed", seed)
    assert again.exit_code == 0 and again.stderr == ""
    assert again.stdout == first.stdout
    assert cli(*args, "--quiet").stderr == ""


def test_a_refused_request_draws_no_seed(cli, tiny_run):
    for args in (["--midi", "x"], ["--num-steps", "3"], ["-f", "nowhere.txt"]):
        result = cli("sample", tiny_run, *args)
        assert result.exit_code != 0
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
