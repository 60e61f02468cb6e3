"""genseq/music/features.py: a tune's features from its notes, and the overlapping area and
KL divergence on known histograms."""

from __future__ import annotations

import math

import pytest

from genseq.music.features import kl_divergence, melody, overlap_area, tune_features


def test_tune_features_from_notes():
    from genseq.music.notes import tune_notes

    tokens = "M:2/4 K:Cmaj C E [ G c ] 2 | c' 2 C, 2 |]".split()
    notes = tune_notes(tokens, expand_repeats=False).notes
    top = melody(notes)
    assert [n.pitch for n in top] == [60, 64, 72, 84, 48]  # the chord counts as its top note
    f = tune_features(notes)
    assert (f.low, f.high, f.span) == (48, 84, 36)
    assert f.pitch_class[0] == 4 and f.pitch_class[4] == 1 and f.pitch_class[7] == 1
    steps = {i - 12: int(c) for i, c in enumerate(f.interval) if c}
    assert steps == {4: 1, 8: 1, 12: 1, -12: 1}  # 84 -> 48 is clamped to -12
    assert list(f.note_length) == [0, 2, 0, 3, 0, 0, 0, 0, 0]  # 1/8 1/8 1/4 1/4 1/4


def test_overlap_and_kl_on_known_vectors():
    p = [3, 1, 0, 6]
    assert overlap_area(p, p) == pytest.approx(1.0)
    assert kl_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    assert overlap_area([1, 1], [1, 3]) == pytest.approx(0.75)
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence([1, 1], [1, 3]) == pytest.approx(expected, rel=1e-4)
    assert overlap_area([1, 0], [0, 1]) == 0.0
    assert 10 < kl_divergence([1, 0], [0, 1]) < 20  # large, but finite thanks to smoothing
    assert math.isnan(overlap_area([0, 0], [1, 1])) and math.isnan(kl_divergence([1], [0]))
