"""The percentile method (linear interpolation, numpy's default) on inputs whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepclf.bench.stats import percentile, percentiles, summarize


def test_percentiles_of_1_to_100_are_the_documented_values():
    xs = list(range(1, 101))
    assert percentile(xs, 0) == 1
    assert percentile(xs, 50) == pytest.approx(50.5)
    assert percentile(xs, 90) == pytest.approx(90.1)
    assert percentile(xs, 99) == pytest.approx(99.01)
    assert percentile(xs, 99.9) == pytest.approx(99.901)
    assert percentile(xs, 100) == 100


def test_small_samples_interpolate_between_closest_ranks():
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([10, 20], 25) == pytest.approx(12.5)
    assert percentile([7.0], 99) == 7.0
    assert percentile([3, 1, 2], 50) == 2  # unsorted input is sorted first


def test_agrees_with_numpy_linear_on_random_samples():
    rng = np.random.default_rng(1)
    x = rng.lognormal(size=997)
    for q in (0.1, 25, 50, 90, 95, 99, 99.9):
        assert percentile(x, q) == pytest.approx(float(np.percentile(x, q, method="linear")), rel=1e-12)
    got = percentiles(x, (50, 99))
    assert got[50.0] == pytest.approx(float(np.median(x)))


def test_empty_is_nan_and_bad_q_is_refused():
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1, 2], 101)
    with pytest.raises(ValueError):
        percentile([1, 2], -1)


def test_summary_fields():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.count, s.mean, s.min, s.max) == (4, 2.5, 1.0, 4.0)
    assert s.std == pytest.approx(np.std([1, 2, 3, 4]))
    assert s.p50 == pytest.approx(2.5) and s.p90 == pytest.approx(3.7)
    empty = summarize([])
    assert empty.count == 0 and math.isnan(empty.p99)
