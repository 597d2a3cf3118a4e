"""Two thresholds on the monitored value, as PyTorch Lightning's EarlyStopping has them.

* ``stopping_threshold``: stop after the first epoch whose value is strictly better than the
  threshold (below it in min mode, above it in max mode): the target is reached, more epochs buy
  nothing the user asked for.
* ``divergence_threshold``: stop after the first epoch whose value is strictly worse than the
  threshold: the run has diverged and will not come back.

Both compare the Python float Keras puts in the logs with the threshold, as Lightning compares
``current`` with it; a missing (None) or NaN value is not judged (NaN compares false). Neither
restores weights: the model ends with the last epoch's, and the best epoch reported is the one with
the best value seen (first on ties), as EarlyStopping would count it with min_delta 0.

Epochs are 0-based, results are :class:`core.stopping.replay.ReplayResult` (``criterion`` holds the
value judged each epoch, NaN where none was).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.stopping.replay import ReplayResult, kept_as_trained


def replay_threshold(
    values: Sequence[float | None], threshold: float, mode: str, *, beyond: str, rule: str
) -> ReplayResult:
    """``beyond="better"``: the stopping threshold; ``beyond="worse"``: the divergence threshold."""
    if mode not in ("min", "max") or beyond not in ("better", "worse"):
        raise ValueError(f"mode must be min or max and beyond better or worse; got {mode!r}, {beyond!r}")
    lower_fires = (mode == "min") == (beyond == "better")
    best = best_epoch = None
    improved: list[int] = []
    criterion: list[float] = []
    stop = None
    for t, v in enumerate(values):
        value = None if v is None else float(v)
        if value is None or math.isnan(value):
            criterion.append(math.nan)
            continue
        criterion.append(value)
        if best is None or (value < best if mode == "min" else value > best):
            best, best_epoch = value, t
            improved.append(t)
        if (value < threshold) if lower_fires else (value > threshold):
            stop = t
            break
    return kept_as_trained(
        len(values), stop, rule=rule, criterion=criterion, best=best, best_epoch=best_epoch, improved=improved
    )


# The exported script's version of both: plain Keras, the same comparison.
SCRIPT_CLASS = '''
class StopAtThreshold(keras.callbacks.Callback):
    """Stops after the first epoch whose monitored value is strictly beyond
    `threshold`, as PyTorch Lightning's EarlyStopping(stopping_threshold=...,
    divergence_threshold=...) does: `beyond="better"` stops at a target reached,
    `beyond="worse"` stops a diverged run. A missing or NaN value is not judged (NaN
    compares false)."""

    def __init__(self, monitor, threshold, mode, beyond):
        super().__init__()
        self.monitor, self.threshold, self.beyond = monitor, threshold, beyond
        self.lower_fires = (mode == "min") == (beyond == "better")
        self.stopped_epoch = None  # 0-based, as Keras counts

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        if (value < self.threshold) if self.lower_fires else (value > self.threshold):
            self.stopped_epoch = epoch
            self.model.stop_training = True
            print(
                f"Epoch {epoch + 1}: {self.monitor} {value:.5f} is {self.beyond} than "
                f"{self.threshold:g}; stopping."
            )
'''
