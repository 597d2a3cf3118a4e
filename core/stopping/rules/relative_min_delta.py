"""Patience with a relative min_delta: an improvement must beat the best by a fraction of the best.

Keras' ``min_delta`` is absolute, so one value cannot suit a loss of 2.3 and one of 0.002. Here an
epoch improves when its value is better than ``best - fraction * |best|`` (min mode; ``best +
fraction * |best|`` in max mode), so 0.01 asks for 1% better whatever the scale. Otherwise as Keras
counts: the first value seen is the best, an improving epoch resets the wait, any other adds one,
and the fit stops once the wait reaches ``patience``. A missing or NaN value is not judged. It does
not restore weights (the model kept is ModelCheckpoint's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from core.stopping.replay import ReplayResult, kept_as_trained
from core.stopping.rules.rule import Curves, Parameter, StoppingRule


def replay_relative(
    values: Sequence[float | None], patience: int, fraction: float, mode: str = "min"
) -> ReplayResult:
    """Where patience with a relative min_delta stops (0-based epochs; ``criterion``: the wait)."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be min or max; got {mode!r}")
    best = best_epoch = None
    wait = 0
    improved: list[int] = []
    waits: list[int] = []
    criterion: list[float] = []
    stop = None
    for t, v in enumerate(values):
        value = None if v is None else float(v)
        if value is None or math.isnan(value):
            waits.append(wait)
            criterion.append(math.nan)
            continue
        margin = fraction * abs(best) if best is not None else 0.0
        if best is None or (value < best - margin if mode == "min" else value > best + margin):
            best, best_epoch, wait = value, t, 0
            improved.append(t)
        else:
            wait += 1
        waits.append(wait)
        criterion.append(float(wait))
        if wait >= patience:
            stop = t
            break
    return kept_as_trained(
        len(values), stop, rule=f"relative patience {patience}", criterion=criterion, best=best,
        best_epoch=best_epoch, improved=improved, wait=waits,
    )  # fmt: skip


def _replay(curves: Curves, p: Mapping[str, Any]) -> ReplayResult:
    return replay_relative(curves.val, p["patience"], p["fraction"], curves.mode)


SCRIPT_CLASS = '''
class RelativePatience(keras.callbacks.Callback):
    """Stops once `patience` epochs in a row failed to beat the best by `fraction` of
    the best (min mode: below best - fraction * |best|; max mode: above best +
    fraction * |best|). The first value seen is the best; a missing or NaN value is
    not judged."""

    def __init__(self, monitor, patience, fraction, mode):
        super().__init__()
        self.monitor, self.patience, self.fraction = monitor, patience, fraction
        self.sign = 1.0 if mode == "min" else -1.0
        self.stopped_epoch = None  # 0-based, as Keras counts

    def on_train_begin(self, logs=None):
        self.best, self.wait = None, 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or value != value:  # missing or NaN
            return
        if self.best is None:
            improved = True
        else:
            margin = self.fraction * abs(self.best)
            if self.sign > 0:
                improved = value < self.best - margin
            else:
                improved = value > self.best + margin
        if improved:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            print(f"Epoch {epoch + 1}: no relative improvement for {self.wait} epochs.")
'''

RULE = StoppingRule(
    name="relative_min_delta",
    label="Patience, relative min_delta",
    description="Stop after `patience` epochs without beating the best by a fraction of the best.",
    parameters=(
        Parameter(
            "patience", "Patience (epochs)", 10, 1, 1_000_000, "Epochs without a relative improvement."
        ),
        Parameter(
            "fraction",
            "Relative min_delta",
            0.01,
            0.0,
            1.0,
            "The share of the best value an epoch must improve by (0.01: 1% better).",
        ),
    ),  # fmt: skip
    replay_curves=_replay,
    title=lambda p: f"Patience {p['patience']}, {100 * p['fraction']:.4g}% better: relative min_delta",
    script_class=SCRIPT_CLASS,
    script_call=lambda p, monitor, mode: (
        "RelativePatience",
        {"monitor": monitor, "patience": p["patience"], "fraction": float(p["fraction"]), "mode": mode},
    ),
    explain=lambda p, r: (
        f"{p['patience']} epochs without beating the best, {r.best:.5g}, by {p['fraction']:.4g} of it"
    ),
)
