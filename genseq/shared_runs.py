"""The longest run of consecutive ids each query sequence shares with any reference sequence.

A sequence model's samples are checked for memorisation this way: a long run copied from the
training data is a sample the model recalled rather than wrote. The search knows only integer
sequences; ``token_ids`` maps any token strings onto shared ids first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

_BASE = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2**64
_BASE_INV = pow(_BASE, -1, 1 << 64)


@dataclass(frozen=True)
class RunMatch:
    """The longest run of consecutive tokens a query shares with the reference (0: none)."""

    length: int
    reference: int | None = None  # index of the reference sequence it was found in
    query_start: int | None = None
    reference_start: int | None = None


class _Hashed:
    """Sequences laid end to end, with what a window hash needs: h(i, n) for any i and n.

    h(i, n) = sum_k x[i+k] B^k (mod 2^64) = (S[i+n] - S[i]) * B^-i with S the prefix sums of
    x[j] B^j; uint64 arithmetic wraps modulo 2^64, and B is odd so B^-1 exists.
    """

    def __init__(self, sequences: Sequence[Sequence[int]]) -> None:
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        total = int(self.offsets[-1])
        self.tokens = (
            np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
            if total
            else np.zeros(0, dtype=np.int64)
        )
        self.seq = np.repeat(np.arange(len(sequences)), lengths)  # which sequence, per position
        self.end = np.repeat(self.offsets[1:], lengths)  # where that sequence ends
        with np.errstate(over="ignore"):
            powers = _powers(_BASE, total)
            self.inverse = _powers(_BASE_INV, total)
            values = (self.tokens + 1).astype(np.uint64) * powers
            self.prefix = np.concatenate(
                [np.zeros(1, np.uint64), np.cumsum(values, dtype=np.uint64)]
            )

    def windows(self, positions: np.ndarray, n: int) -> np.ndarray:
        """Positions (from ``positions``) whose length-n window stays inside its sequence."""
        return positions[self.end[positions] - positions >= n]

    def hashes(self, positions: np.ndarray, n: int) -> np.ndarray:
        with np.errstate(over="ignore"):
            return (self.prefix[positions + n] - self.prefix[positions]) * self.inverse[positions]


def _powers(base: int, n: int) -> np.ndarray:
    out = np.full(n, base, dtype=np.uint64)
    if n:
        out[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(out, dtype=np.uint64)


def longest_shared_runs(
    queries: Sequence[Sequence[int]], references: Sequence[Sequence[int]]
) -> list[RunMatch]:
    """For each query, the longest run of consecutive ids it shares with any reference.

    A binary search over the run length n, done for all queries at once: a query has a run of
    length n when one of its length-n window hashes is among the reference's (``np.isin`` and
    a sorted search) and the tokens are then compared exactly, so a hash collision can never
    give a false match. Having a run of n implies runs of every shorter length, which makes
    the search valid; it also means the reference positions that matched at n are the only
    ones that can match at a larger n, so each step searches fewer positions. About
    O(N log L) for a reference of N tokens: a second or two for a million.
    """
    results = [RunMatch(0) for _ in queries]
    if not queries or not references:
        return results
    q, r = _Hashed(queries), _Hashed(references)
    longest = min(max(len(s) for s in queries), max(len(s) for s in references))
    if longest == 0:
        return results
    search = _RunSearch(q, r, results)
    search.run(np.arange(len(queries)), 0, longest + 1, np.arange(len(r.tokens)))
    return results


class _RunSearch:
    """The recursive binary search of ``longest_shared_runs``, with its shared state."""

    def __init__(self, q: _Hashed, r: _Hashed, results: list[RunMatch]) -> None:
        self.q, self.r, self.results = q, r, results

    def run(self, queries: np.ndarray, lo: int, hi: int, candidates: np.ndarray) -> None:
        """Each of ``queries`` shares a run of ``lo`` and none of ``hi``; ``candidates`` holds
        every reference position where a shared run of length > lo can start."""
        while len(queries) and hi - lo > 1:
            mid = (lo + hi) // 2
            found, hits = self.test(queries, mid, candidates)
            ok = np.isin(queries, found)
            self.run(queries[ok], mid, hi, hits)
            queries, hi = queries[~ok], mid

    def test(
        self, queries: np.ndarray, n: int, candidates: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Which of ``queries`` share a run of exactly n tokens (verified), and the reference
        positions whose length-n hash any of their windows has (a superset of true matches)."""
        q, r = self.q, self.r
        starts = [np.arange(q.offsets[t], q.offsets[t + 1] - n + 1) for t in queries]
        qpos = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        rpos = r.windows(candidates, n)
        if len(qpos) == 0 or len(rpos) == 0:
            return np.zeros(0, np.int64), rpos[:0]
        qh, rh = q.hashes(qpos, n), r.hashes(rpos, n)
        shared = np.isin(rh, qh)
        rpos, rh = rpos[shared], rh[shared]
        order = np.argsort(rh, kind="stable")
        rpos, rh = rpos[order], rh[order]
        left = np.searchsorted(rh, qh, "left")
        right = np.searchsorted(rh, qh, "right")
        hit = right > left
        bounds = np.cumsum([0] + [len(s) for s in starts])  # query k's windows: its qpos slice
        found = []
        for k, t in enumerate(queries):
            mine = bounds[k] + np.flatnonzero(hit[bounds[k] : bounds[k + 1]])
            match = self.verify(t, qpos, left, right, rpos, n, mine)
            if match is not None:
                found.append(t)
                self.results[t] = match
        return np.array(found, dtype=np.int64), rpos

    def verify(
        self,
        t: int,
        qpos: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        rpos: np.ndarray,
        n: int,
        mine: np.ndarray,
    ) -> RunMatch | None:
        """The first exact match among query t's hash hits (collisions are skipped)."""
        q, r = self.q, self.r
        for k in mine:
            window = q.tokens[qpos[k] : qpos[k] + n]
            for j in range(left[k], right[k]):
                start = int(rpos[j])
                if np.array_equal(window, r.tokens[start : start + n]):
                    ref = int(r.seq[start])
                    return RunMatch(
                        n, ref, int(qpos[k] - q.offsets[t]), start - int(r.offsets[ref])
                    )
        return None


def token_ids(*token_lists: Iterable[Sequence[str]]) -> list[list[list[int]]]:
    """Map token strings to shared integer ids, for ``longest_shared_runs``."""
    vocab: dict[str, int] = {}
    return [
        [[vocab.setdefault(t, len(vocab)) for t in tokens] for tokens in group]
        for group in token_lists
    ]
