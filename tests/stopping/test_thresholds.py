"""The two thresholds, as PyTorch Lightning compares them: strictly beyond, in the monitor's
direction; a missing or NaN value is not judged; no weights restored (the last epoch's are kept)."""

from __future__ import annotations

import math

import pytest

from core.stopping.thresholds import replay_threshold


@pytest.mark.parametrize(
    ("values", "threshold", "mode", "beyond", "stop"),
    [
        ([1.0, 0.5, 0.2, 0.1], 0.2, "min", "better", 3),  # 0.2 is not below 0.2: strictly
        ([1.0, 0.5, 0.2, 0.1], 0.5, "min", "worse", 0),  # 1.0 is above the limit at once
        ([0.5, 0.7, 0.9, 0.95], 0.9, "max", "better", 3),
        ([0.5, 0.7, 0.3], 0.4, "max", "worse", 2),
        ([None, math.nan, 0.05], 0.1, "min", "better", 2),  # nothing judged before epoch 3
        ([math.nan, math.nan], 0.1, "min", "worse", None),  # NaN compares false
        ([0.3, 0.2], 0.1, "min", "better", None),
    ],
)
def test_stops_at_the_first_epoch_strictly_beyond(values, threshold, mode, beyond, stop):
    r = replay_threshold(values, threshold, mode, beyond=beyond, rule="t")
    assert r.stopped == (stop is not None)
    assert r.epochs_run == (len(values) if stop is None else stop + 1)
    if stop is not None:
        assert r.stopped_epoch == stop
    assert r.final_weights_epoch == r.epochs_run - 1  # no restore: the model ends as trained


def test_the_best_epoch_is_the_first_best_value_seen():
    r = replay_threshold([0.5, 0.3, 0.3, 0.4], 0.0, "min", beyond="better", rule="t")
    assert (r.best_epoch, r.best, r.improved_epochs) == (1, 0.3, [0, 1])


def test_refuses_a_mode_it_does_not_know():
    with pytest.raises(ValueError, match="mode"):
        replay_threshold([1.0], 0.5, "auto", beyond="better", rule="t")
