"""The forecast stopping rule's replay (core/stopping/rules/forecast.py): when it judges, what it
remembers, and what it says when it stops a run."""

from __future__ import annotations

import math

import numpy as np

from core.stopping import curve_forecast
from core.stopping.rules import forecast
from core.stopping.rules.registry import RULES
from core.stopping.rules.rule import Curves

RULE = RULES["forecast"]


def _curve(n: int, seed: int = 0) -> list[float]:
    x = np.arange(1, n + 1)
    clean = 0.3 + 0.6 / x + 0.004 * x  # falls, bottoms out near epoch 12, climbs
    return (clean + 0.005 * np.random.default_rng(seed).standard_normal(n)).tolist()


def _params(**changes):
    return {**RULE.defaults(), **changes}


def test_it_judges_from_min_epochs_finite_values_on_and_gives_the_chance_it_saw():
    val = _curve(40)
    val[3] = None
    val[5] = math.nan
    r = RULE.replay(Curves(val=val), _params(chance=0.0, min_epochs=8))
    assert not r.stopped and r.epochs_run == 40
    judged = [t for t, c in enumerate(r.criterion) if not math.isnan(c)]
    assert judged[0] == 9  # the 8th finite value: epochs 3 and 5 have none
    assert all(math.isnan(r.criterion[t]) for t in (3, 5))
    assert r.criterion[20] == 100 * curve_forecast.chance_of_improvement(val[:21], "min", 10, 0.0)


def test_it_stops_at_the_first_epoch_below_the_chance():
    val = _curve(60)
    r = RULE.replay(Curves(val=val), _params(chance=5.0))
    assert r.stopped
    chances = r.criterion
    assert chances[r.stopped_epoch] < 5.0
    assert all(math.isnan(c) or c >= 5.0 for c in chances[: r.stopped_epoch])
    assert r.best == min(val[: r.stopped_epoch + 1])
    # The bottom is near epoch 12: it does not stop before the climb has begun.
    assert r.stopped_epoch >= 12
    because = RULE.because(_params(chance=5.0), r)
    assert because.startswith(f"Forecast <5% in 10 stopped the run at epoch {r.stopped_epoch + 1}: ")
    assert "chance that one of the next 10 epochs beats the best" in because


def test_remembered_chances_never_change_a_decision():
    val = _curve(50, seed=2)
    forecast._chances.clear()
    fresh = RULE.replay(Curves(val=val), _params(chance=20.0))
    again = RULE.replay(Curves(val=val), _params(chance=20.0))
    other_tail = RULE.replay(Curves(val=val[:30] + [v + 1 for v in val[30:]]), _params(chance=20.0))
    assert fresh == again
    n = min(fresh.stopped_epoch, 29)
    assert other_tail.criterion[: n + 1] == fresh.criterion[: n + 1]
    # A different horizon or min_delta is another forecast, not a remembered one.
    wider = RULE.replay(Curves(val=val), _params(chance=20.0, horizon=3))
    assert wider.criterion != fresh.criterion


def test_the_remembered_chance_is_keyed_by_the_settings_apart_from_the_values():
    """A settings string followed by the values' bytes could collide (min_delta 0.1 and a value whose
    bytes read "23456789" against min_delta 0.123456789): the settings are a key of their own."""
    import struct

    odd = struct.unpack("<d", b"23456789")[0]
    tail = _curve(20, seed=4)
    forecast._chances.clear()
    RULE.replay(Curves(val=[odd, *tail]), _params(chance=0.0, min_delta=0.1, min_epochs=6))
    r = RULE.replay(Curves(val=tail), _params(chance=0.0, min_delta=0.123456789, min_epochs=6))
    fresh = curve_forecast.chance_of_improvement(tail, "min", 10, 0.123456789)
    assert r.criterion[-1] == 100 * fresh


def test_a_higher_is_better_curve_is_judged_in_its_direction():
    acc = [1.0 - v for v in _curve(40, seed=3)]
    up = RULE.replay(Curves(val=acc, mode="max"), _params(chance=5.0))
    down = RULE.replay(Curves(val=[-a for a in acc], mode="min"), _params(chance=5.0))
    assert up.stopped_epoch == down.stopped_epoch and up.stopped == down.stopped
