"""Stopping on several metrics at once: when all of them, or any of them, have stalled.

Each metric keeps its own best and wait, as EarlyStopping counts them: an epoch improves a metric when
its value is better than its best by more than ``min_delta`` (below ``best - min_delta`` for a metric
where lower is better, above ``best + min_delta`` where higher is), which resets its wait; any other
epoch with a value adds one to it. A metric has stalled once its wait reaches ``patience``. "All
stalled" stops after the first epoch at which every metric has; "any stalled" at the first at which
one has. A missing or NaN value leaves that metric's count as it was. The comparison is plain float64
(this rule is the app's, not Keras'), the same in the exported script. Weights are not restored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from core.stopping.replay import ReplayResult, kept_as_trained


def replay_stalled(
    curves: Mapping[str, Sequence[float | None]],
    modes: Mapping[str, str],
    patience: int,
    min_delta: float,
    *,
    combine: str,
    rule: str,
) -> ReplayResult:
    """``criterion``: how many of the metrics had stalled after each epoch."""
    if combine not in ("all", "any") or not curves:
        raise ValueError("combine must be all or any, over at least one metric")
    if set(modes) != set(curves) or any(m not in ("min", "max") for m in modes.values()):
        raise ValueError("every metric needs its mode, min or max")
    n = max(len(values) for values in curves.values())
    best: dict[str, float | None] = dict.fromkeys(curves)
    wait = dict.fromkeys(curves, 0)
    delta = abs(min_delta)
    criterion: list[float] = []
    stop = None
    for t in range(n):
        for name, values in curves.items():
            v = values[t] if t < len(values) else None
            if v is None or math.isnan(float(v)):
                continue
            v, b = float(v), best[name]
            if b is None or (v < b - delta if modes[name] == "min" else v > b + delta):
                best[name], wait[name] = v, 0
            else:
                wait[name] += 1
        stalled = sum(w >= patience for w in wait.values())
        criterion.append(float(stalled))
        if (stalled == len(wait)) if combine == "all" else stalled > 0:
            stop = t
            break
    return kept_as_trained(n, stop, rule=rule, criterion=criterion)


SCRIPT_CLASS = '''
class Stalled(keras.callbacks.Callback):
    """Stops when all (or any) of several metrics have stalled: each keeps its best
    and a wait, as EarlyStopping counts them (`monitors` maps each metric to "min" or
    "max"); a metric has stalled once its wait reaches `patience`. Missing or NaN
    values are skipped."""

    def __init__(self, monitors, patience, min_delta, combine):
        super().__init__()
        self.monitors, self.patience = monitors, patience
        self.min_delta, self.combine = abs(min_delta), combine
        self.stopped_epoch = None  # 0-based, as Keras counts

    def on_train_begin(self, logs=None):
        self.best = dict.fromkeys(self.monitors)
        self.wait = dict.fromkeys(self.monitors, 0)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for name, mode in self.monitors.items():
            value, best = logs.get(name), self.best[name]
            if value is None or value != value:  # missing or NaN
                continue
            if mode == "min":
                improved = best is None or value < best - self.min_delta
            else:
                improved = best is None or value > best + self.min_delta
            if improved:
                self.best[name], self.wait[name] = value, 0
            else:
                self.wait[name] += 1
        stalled = [w >= self.patience for w in self.wait.values()]
        if all(stalled) if self.combine == "all" else any(stalled):
            self.stopped_epoch = epoch
            self.model.stop_training = True
            stalled = f"{self.combine} of {list(self.monitors)} stalled"
            print(f"Epoch {epoch + 1}: {stalled}; stopping.")
'''
