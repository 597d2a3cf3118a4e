"""All stalled / any stalled: each metric counts its own wait, in its own direction."""

from __future__ import annotations

import math

import pytest

from core.stopping.stalled import replay_stalled

LOSS = [1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7]  # stalls from epoch 3 (0-based): waits 1, 2, 3, 4
ACC = [0.5, 0.6, 0.7, 0.8, 0.8, 0.8, 0.8]  # stalls from epoch 4: waits 1, 2, 3


@pytest.mark.parametrize(("combine", "stop"), [("any", 4), ("all", 5)])
def test_each_metric_counts_its_own_wait_in_its_own_direction(combine, stop):
    r = replay_stalled({"val_loss": LOSS, "val_accuracy": ACC}, {"val_loss": "min", "val_accuracy": "max"},
                       patience=2, min_delta=0.0, combine=combine, rule=combine)  # fmt: skip
    assert (r.stopped, r.stopped_epoch) == (True, stop)
    assert r.final_weights_epoch == stop  # no restore


def test_min_delta_is_per_metric_and_missing_values_are_skipped():
    loss = [1.0, 0.95, None, 0.91, math.nan, 0.5]
    r = replay_stalled({"loss": loss}, {"loss": "min"}, patience=2, min_delta=0.1, combine="all", rule="x")
    assert (r.stopped, r.stopped_epoch) == (True, 3)  # 0.95 and 0.91 are not 0.1 better than 1.0


def test_a_metric_without_a_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        replay_stalled({"a": [1.0]}, {}, patience=1, min_delta=0.0, combine="all", rule="x")
