"""The rule benchmark: what a setting trains and gives up on each full curve, the Pareto front, and
which recordings count as full curves (real runs)."""

from __future__ import annotations

import math

import pytest

from core.analysis.rule_benchmark import SETTINGS, Curve, _kept_epoch, benchmark, full_curves, pareto_front
from core.stopping.replay import replay_early_stopping

# Falls to 0.5 at epoch 5 (1-based), then overfits.
VAL = [1.0, 0.8, 0.65, 0.55, 0.5, 0.52, 0.56, 0.6, 0.61, 0.7, 0.72, 0.8]


def test_pareto_front_keeps_the_points_nothing_beats_on_both():
    assert pareto_front([0.2, 0.5, 0.5, 1.0, 0.6], [0.3, 0.1, 0.2, 0.0, 0.1]) == [
        True,
        True,
        False,
        True,
        False,
    ]


def test_each_setting_is_scored_by_its_replay_and_the_checkpoint_it_keeps():
    curve = Curve("a" * 32, "overfits", VAL, [None] * len(VAL))
    frame = benchmark([curve]).set_index("rule")
    assert len(frame) == sum(map(len, SETTINGS.values()))
    patience1 = frame.loc["EarlyStopping patience 1"]
    r = replay_early_stopping(VAL, mode="min", patience=1)
    assert patience1["epochs trained (share)"] == pytest.approx(r.epochs_run / len(VAL))  # stops at epoch 6
    assert patience1["val_loss given up (relative)"] == 0.0  # the kept checkpoint is epoch 5, the best
    assert patience1["stopped on"] == "1 of 1"
    never = frame.loc["EarlyStopping patience 20"]
    assert never["epochs trained (share)"] == 1.0 and never["stopped on"] == "0 of 1"
    # patience 1 trains less for the same loss: patience 20 is not on the front.
    assert patience1["on the Pareto front"] and not never["on the Pareto front"]


def test_a_rule_that_stops_before_the_best_gives_up_what_it_missed():
    curve = Curve("b" * 32, "noisy", [1.0, 1.2, 0.5, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9], [None] * 10)
    row = benchmark([curve]).set_index("rule").loc["GL1"]  # 1.2 is 20% above 1.0: stops at epoch 2
    assert row["epochs trained (share)"] == pytest.approx(0.2)
    assert row["val_loss given up (relative)"] == pytest.approx((1.0 - 0.4) / 0.4)


def test_the_kept_epoch_is_the_best_so_far():
    assert _kept_epoch([3.0, 2.0, math.nan, 2.0, 1.0], 4) == 1
    assert _kept_epoch([None, 2.0], 2) == 1


def test_only_full_curves_count(trainer):
    from core.presets import PRESETS

    full = PRESETS["quick_digits"].make()
    full.name, full.fit.max_epochs, full.early_stopping.enabled = "full", 12, False
    short = PRESETS["quick_digits"].make()
    short.name, short.fit.max_epochs, short.early_stopping.enabled = "short", 5, False
    stopped = PRESETS["quick_digits"].make()
    stopped.name, stopped.fit.learning_rate, stopped.early_stopping.patience = "stopped", 0.05, 1
    snaps = [trainer.wait(trainer.start(cfg).id, timeout=180) for cfg in (full, short, stopped)]
    assert snaps[2].stop_reason == "early_stopping", snaps[2].message
    curves = full_curves(snaps)
    assert [c.name for c in curves] == ["full"]
    assert curves[0].val == [r.logs["val_loss"] for r in snaps[0].history]
