"""Stop once the training time so far exceeds a budget.

The time is the sum of the epochs' training times as the run records them (validation and checkpoint
saving included, time spent stopped or queued not), so a replay of the recording stops where the run
did. The check is at the end of an epoch: the last epoch runs to its end, so a run overshoots its
budget by at most one epoch. Unlike every other rule it reads a clock: the same run on a busier
machine stops at another epoch, and its exported script stops where its own clock says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from core.stopping.replay import ReplayResult, kept_as_trained
from core.stopping.rules.rule import Curves, Parameter, StoppingRule


def replay_time_budget(curves: Curves, params: Mapping[str, Any]) -> ReplayResult:
    """The first epoch at whose end the time so far is above the budget (``criterion``: the time so far)."""
    n = len(curves.val)
    if len(curves.seconds) < n:
        raise ValueError("a time budget needs each epoch's training time, and this recording has none")
    budget = params["minutes"] * 60.0
    elapsed = 0.0
    criterion: list[float] = []
    stop = None
    for t in range(n):
        elapsed += float(curves.seconds[t])
        criterion.append(elapsed)
        if elapsed > budget:
            stop = t
            break
    return kept_as_trained(n, stop, rule=f"time budget {params['minutes']:g} min", criterion=criterion)


SCRIPT_CLASS = '''
class TimeBudget(keras.callbacks.Callback):
    """Stops once the training time so far (the sum of the epochs' durations) is above
    `minutes`, checked at the end of each epoch: the last epoch runs to its end."""

    def __init__(self, minutes):
        super().__init__()
        self.budget = minutes * 60.0
        self.stopped_epoch = None  # 0-based, as Keras counts

    def on_train_begin(self, logs=None):
        self.elapsed = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.elapsed += time.perf_counter() - self.started
        if self.elapsed > self.budget:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            print(f"Epoch {epoch + 1}: {self.elapsed:.1f} s of training; stopping.")
'''


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.3g} min" if seconds >= 60 else f"{seconds:.3g} s"


RULE = StoppingRule(
    name="time_budget",
    label="Time budget",
    description="Stop once the training time so far is above the budget (checked at each epoch's end).",
    parameters=(
        Parameter("minutes", "Budget (minutes)", 60.0, 0.001, 1_000_000.0, "Training time, epochs summed."),
    ),
    replay_curves=replay_time_budget,
    title=lambda p: f"Time budget {p['minutes']:g} min: training time so far above it",
    script_class=SCRIPT_CLASS,
    script_imports=("import time",),
    script_call=lambda p, monitor, mode: ("TimeBudget", {"minutes": float(p["minutes"])}),
    explain=lambda p, r: (
        f"{_minutes(r.criterion[r.stopped_epoch])} of training, more than {p['minutes']:g} min"
        if not math.isnan(r.criterion[r.stopped_epoch])
        else "the time budget ran out"
    ),
)
