"""The live chart's decimation, kept between ticks: growing it epoch by epoch must give what
bucketing the whole series at once gives, stay bounded, and keep every bucket's extremes and gaps."""

from __future__ import annotations

import numpy as np
import pytest

from core.charts.buckets import NONE, MinMaxBuckets


def _grown(y: np.ndarray, limit: int, rng: np.random.Generator) -> MinMaxBuckets:
    b = MinMaxBuckets(limit)
    n = 0
    while n < len(y):
        n = min(len(y), n + int(rng.integers(1, 40)))
        b.extend(y[:n])
    return b


@pytest.mark.parametrize("seed", range(6))
def test_growing_by_ticks_equals_bucketing_at_once(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=int(rng.integers(50, 5000))).cumsum()
    y[rng.random(len(y)) < 0.02] = np.nan  # gaps (a metric missing at some epochs)
    y[:3] = np.round(y[:3])  # and ties
    limit = int(rng.integers(3, 300))
    at_once = MinMaxBuckets(limit)
    at_once.extend(y)
    grown = _grown(y, limit, rng)
    assert grown.size == at_once.size
    assert grown.indices().tolist() == at_once.indices().tolist()


@pytest.mark.parametrize("limit", [1, 7, 150])
def test_bounded_and_each_bucket_keeps_its_extremes_and_first_gap(limit):
    rng = np.random.default_rng(limit)
    y = rng.normal(size=20_000)
    y[rng.random(len(y)) < 0.001] = np.nan
    b = _grown(y, limit, rng)
    kept = b.indices()
    assert len(kept) <= 3 * limit
    size = b.size
    assert -(-len(y) // size) <= limit  # buckets
    for start in range(0, len(y), size):
        part = y[start : start + size]
        real = ~np.isnan(part)
        if real.any():
            assert start + np.nanargmin(part) in kept and start + np.nanargmax(part) in kept
        if (~real).any():
            assert start + int(np.argmax(~real)) in kept


def test_a_shorter_series_is_refused_and_all_nan_keeps_only_gaps():
    b = MinMaxBuckets(4)
    b.extend(np.full(40, np.nan))
    assert NONE not in b.indices().tolist() and len(b.indices()) == -(-40 // b.size)  # a NaN a bucket
    with pytest.raises(ValueError):
        b.extend(np.zeros(3))
