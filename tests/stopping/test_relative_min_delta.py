"""Patience with a relative min_delta: the same curve at any scale stops at the same epoch (what an
absolute min_delta cannot do), improvements are judged against a share of the best, as Keras counts
the wait."""

from __future__ import annotations

import math

import pytest

from core.stopping.rules.relative_min_delta import replay_relative

CURVE = [1.0, 0.8, 0.7, 0.69, 0.68, 0.675, 0.674, 0.6739]


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4])
def test_the_same_curve_at_any_scale_stops_at_the_same_epoch(scale):
    r = replay_relative([v * scale for v in CURVE], patience=2, fraction=0.02)
    # 0.69 is not 2% below 0.7 (0.686): wait 1; 0.68 is (below 0.686): reset; 0.675, 0.674: wait 1, 2.
    assert (r.stopped, r.stopped_epoch, r.best_epoch) == (True, 6, 4)
    assert r.wait[:7] == [0, 0, 0, 1, 0, 1, 2]


def test_max_mode_asks_for_a_share_above_the_best():
    r = replay_relative([0.5, 0.6, 0.605, 0.61, 0.7], patience=2, fraction=0.05, mode="max")
    assert (r.stopped, r.stopped_epoch, r.best_epoch) == (True, 3, 1)


def test_missing_and_nan_values_are_not_judged():
    r = replay_relative([1.0, None, math.nan, 0.5, 0.5], patience=1, fraction=0.0)
    assert (r.stopped, r.stopped_epoch, r.best_epoch) == (True, 4, 3)
    assert r.final_weights_epoch == 4  # no restore: the model ends as trained
