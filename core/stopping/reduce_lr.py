"""Replay of Keras 3 ``ReduceLROnPlateau`` on a recorded history: which epochs lower the rate, and
the rate each epoch trains with (what the callback puts into the logs as ``learning_rate``).

A line-by-line transcription of keras/src/callbacks/reduce_lr_on_plateau.py (Keras 3.15.1), with
its improvement test (``MonitorCallback._is_improvement``, float32 as in core/stopping/replay.py):

* at each epoch with the monitored value: a cooldown in progress counts down and resets the wait;
  an improvement sets the best and resets the wait; otherwise, outside a cooldown, the wait grows
  and, once it reaches ``patience``, the rate is lowered if it is above ``min_lr`` (as float32):
  ``max(rate * factor, min_lr)``, stored in the optimizer's float32 variable; a reduction starts the
  cooldown and resets the wait. A missing value changes nothing.
* the rate logged for an epoch is the one it trained with (read before the reduction).

Honest limit: a replay under *other* settings is exact only up to the first epoch whose rate would
differ from the recording's; from there the run would have trained on another rate, so its curve,
and everything read from it, is not what was recorded (``ScheduleReplay.exact_until``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.stopping.replay import as_values, improvement

_F32 = struct.Struct("<f")


def _as_f32(x: float) -> float:
    """A float stored in a float32 variable and read back (round to nearest, as TF casts)."""
    return _F32.unpack(_F32.pack(x))[0]


@dataclass(frozen=True)
class ScheduleReplay:
    rates: list[float]  # the rate each epoch trained with, as logged
    reduced_epochs: list[int]  # 0-based epochs at whose end the rate was lowered
    exact_until: int | None = None  # epochs whose rate matches the recording's (None: not compared)


def replay_reduce_lr(
    values: Sequence[float | None],
    *,
    initial_rate: float,
    mode: str,
    factor: float = 0.1,
    patience: int = 10,
    min_delta: float = 1e-4,
    cooldown: int = 0,
    min_lr: float = 0.0,
    recorded_rates: Sequence[float | None] | None = None,
) -> ScheduleReplay:
    """The schedule ``ReduceLROnPlateau`` gives on ``values``; with ``recorded_rates``, how many epochs
    it agrees with the recording (the replay's curve is the recording's only that far)."""
    improves = improvement(mode, min_delta)
    rate = _as_f32(float(initial_rate))
    best: float | None = None
    wait = cooldown_counter = 0
    rates: list[float] = []
    reduced: list[int] = []
    for epoch, current in enumerate(as_values(values)):
        rates.append(rate)
        if current is None:
            continue
        if cooldown_counter > 0:
            cooldown_counter -= 1
            wait = 0
        if improves(current, best):
            best, wait = current, 0
        elif not cooldown_counter > 0:
            wait += 1
            if wait >= patience and rate > float(np.float32(min_lr)):
                rate = _as_f32(max(rate * factor, min_lr))
                reduced.append(epoch)
                cooldown_counter, wait = cooldown, 0
    exact = None
    if recorded_rates is not None:
        exact = 0
        for ours, theirs in zip(rates, recorded_rates, strict=False):
            if theirs is None or ours != float(theirs):
                break
            exact += 1
    return ScheduleReplay(rates=rates, reduced_epochs=reduced, exact_until=exact)
