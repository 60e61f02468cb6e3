"""genseq/shared_runs.py: the longest shared run search, checked against a brute-force
search on small random sequences, on planted copies, and for speed on a large reference."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from genseq.shared_runs import longest_shared_runs, token_ids


def brute_force_run(query: list[int], references: list[list[int]]) -> int:
    best = 0
    for ref in references:
        for i in range(len(query)):
            for j in range(len(ref)):
                k = 0
                while i + k < len(query) and j + k < len(ref) and query[i + k] == ref[j + k]:
                    k += 1
                best = max(best, k)
    return best


def test_a_copied_run_is_found_where_it_was_copied():
    rng = random.Random(0)
    refs = [[rng.randrange(50) for _ in range(300)] for _ in range(20)]
    query = [100 + rng.randrange(50) for _ in range(80)]  # ids the reference never uses
    query[30:30] = refs[7][100:137]
    (match,) = longest_shared_runs([query], refs)
    assert (match.length, match.reference) == (37, 7)
    assert (match.query_start, match.reference_start) == (30, 100)


def test_sets_without_shared_ids_share_no_run():
    runs = longest_shared_runs([[1, 2, 3], [], [4]], [[5, 6, 7], [8]])
    assert [r.length for r in runs] == [0, 0, 0]
    assert runs[0].reference is None
    assert longest_shared_runs([[1, 2]], []) == [longest_shared_runs([[9]], [[1]])[0]]


def test_runs_never_cross_from_one_reference_into_the_next():
    # "2 3" exists only across the join of two references: not a run of either.
    (match,) = longest_shared_runs([[1, 2, 3, 4]], [[0, 1, 2], [3, 4, 0]])
    assert match.length == 2 and match.reference in (0, 1)


def test_token_ids_are_shared_between_sets():
    ours, theirs = token_ids([["a", "b"], ["c"]], [["b", "c", "d"]])
    assert ours == [[0, 1], [2]] and theirs == [[1, 2, 3]]


sequences = st.lists(st.integers(0, 3), max_size=14)


@settings(max_examples=150, deadline=None)
@given(queries=st.lists(sequences, min_size=1, max_size=4), refs=st.lists(sequences, max_size=4))
def test_longest_shared_runs_equals_brute_force(queries, refs):
    runs = longest_shared_runs(queries, refs)
    for query, run in zip(queries, runs, strict=True):
        assert run.length == brute_force_run(query, refs)
        if run.length:
            ref = refs[run.reference]
            copied = query[run.query_start : run.query_start + run.length]
            assert copied == ref[run.reference_start : run.reference_start + run.length]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_inserting_a_reference_run_is_found(data):
    refs = data.draw(st.lists(st.lists(st.integers(0, 20), min_size=1, max_size=60), min_size=1))
    which = data.draw(st.integers(0, len(refs) - 1))
    ref = refs[which]
    start = data.draw(st.integers(0, len(ref) - 1))
    n = data.draw(st.integers(1, len(ref) - start))
    query = data.draw(st.lists(st.integers(0, 30), max_size=40))
    at = data.draw(st.integers(0, len(query)))
    query[at:at] = ref[start : start + n]
    (run,) = longest_shared_runs([query], refs)
    assert run.length >= n


def test_search_is_fast_on_a_large_reference():
    g = np.random.default_rng(0)
    refs = [g.integers(0, 60, 250) for _ in range(2000)]  # 500,000 tokens
    queries = [g.integers(0, 60, 200) for _ in range(30)]
    queries[3][50:90] = refs[1234][10:50]
    runs = longest_shared_runs(queries, refs)
    assert runs[3].length >= 40 and runs[3].reference == 1234
    assert max(r.length for i, r in enumerate(runs) if i != 3) < 12
